package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/zeppelin-kv/zeppelin/zpctl/survey/surveytest"
)

// syncBuffer is the program's output, read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOutput polls out until it contains want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the output after 10s:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Keys typed in one burst (tmux send-keys, a paste of keys, a fast typist
// over ssh) reach bubbletea in one read, which it delivers as one message
// of several runes: each must act as if typed alone. "2jjjs" selects the
// third node of the Nodes view and opens the shrink dialog for it.
func TestBurstOfKeys(t *testing.T) {
	in, typed := io.Pipe()
	defer typed.Close()
	out := &syncBuffer{}
	p := tea.NewProgram(newTestModel(termenv.Ascii, nil), tea.WithInput(in), tea.WithOutput(out),
		tea.WithoutSignals())
	done := make(chan tea.Model, 1)
	go func() {
		m, err := p.Run()
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- m
	}()
	p.Send(size(100, 30))
	p.Send(healthy())
	waitOutput(t, out, "HEALTHY")
	// One write: one read by the program.
	if _, err := typed.Write([]byte("2jjs")); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "Shrink:")
	p.Quit()
	final := (<-done).(Model)
	if final.tab != tabNodes || final.cursor[tabNodes] != 2 {
		t.Errorf("tab %v, cursor %d: want the Nodes view, row 2", final.tab, final.cursor[tabNodes])
	}
	if final.dialog == nil || strings.Join(final.dialog.Nodes, ",") != surveytest.Nodes[2] {
		t.Fatalf("dialog %+v, want shrink of %s", final.dialog, surveytest.Nodes[2])
	}
}

// The model takes a message of several runes key by key, also where a key
// changes how the next are read (a dialog opened by the burst answers to
// the burst's y).
func TestMultiRuneKeyMsg(t *testing.T) {
	var got []Action
	runner := func(_ context.Context, a Action) (Outcome, error) { got = append(got, a); return Outcome{}, nil }
	m := drive(t, newTestModel(termenv.Ascii, runner), size(80, 24), healthy(),
		tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2jsy")})
	if len(got) != 1 || got[0].Kind != "shrink" || strings.Join(got[0].Nodes, ",") != surveytest.Nodes[1] {
		t.Fatalf("actions %+v, want a shrink of %s", got, surveytest.Nodes[1])
	}
	if m.dialog != nil || m.cursor[tabNodes] != 1 {
		t.Fatalf("dialog %+v, cursor %d", m.dialog, m.cursor[tabNodes])
	}
}
