package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey"
)

// Poller surveys the cluster at an interval and sends each survey into
// the program.
type Poller struct {
	interval time.Duration
	take     func(ctx context.Context) *survey.Snapshot
	send     func(tea.Msg)
	refresh  chan struct{}
}

// NewPoller returns a poller that calls take every interval (default one
// second) and delivers the result with send (tea.Program.Send). take gets
// a context bounded by the interval, so a slow cluster makes the view
// update less often, never pile surveys up.
func NewPoller(interval time.Duration, take func(ctx context.Context) *survey.Snapshot, send func(tea.Msg)) *Poller {
	if interval <= 0 {
		interval = time.Second
	}
	return &Poller{interval: interval, take: take, send: send, refresh: make(chan struct{}, 1)}
}

// Refresh makes Run survey now rather than at the next tick. It never
// blocks; refreshes asked while one is pending are one.
func (p *Poller) Refresh() {
	select {
	case p.refresh <- struct{}{}:
	default:
	}
}

// Run surveys at once and then every interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		tctx, cancel := context.WithTimeout(ctx, p.interval)
		s := p.take(tctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.send(SnapshotMsg{Snapshot: s})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.refresh:
		}
	}
}
