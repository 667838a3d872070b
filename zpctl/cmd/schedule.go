package cmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
)

// scheduleKeys are the settings `schedule set` knows, with how to read a
// value of each.
var scheduleKeys = map[string]func(v string, ch *client.ScheduleChange) error{
	"down-timeout": func(v string, ch *client.ScheduleChange) error {
		if v == "never" || v == "off" {
			d := time.Duration(-1)
			ch.DownTimeout = &d
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("down-timeout %q: want a positive duration such as 30m, or never", v)
		}
		ch.DownTimeout = &d
		return nil
	},
	"master-balance": func(v string, ch *client.ScheduleChange) error {
		b, err := parseOnOff(v)
		if err != nil {
			return fmt.Errorf("master-balance: %w", err)
		}
		ch.MasterBalance = &b
		return nil
	},
	"max-moves-per-node": func(v string, ch *client.ScheduleChange) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("max-moves-per-node %q: want a number >= 1", v)
		}
		u := uint32(n)
		ch.MaxMovesPerNode = &u
		return nil
	},
	"fullsync-rate": func(v string, ch *client.ScheduleChange) error {
		var n uint64
		if v != "off" && v != "unlimited" {
			var err error
			if n, err = bytesize.Parse(v); err != nil {
				return fmt.Errorf("fullsync-rate %w", err)
			}
		}
		ch.FullSyncRate = &n
		return nil
	},
	"max-moves": func(v string, ch *client.ScheduleChange) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("max-moves %q: want a number >= 1 (zpctl schedule pause stops the scheduler)", v)
		}
		u := uint32(n)
		ch.MaxMoves = &u
		return nil
	},
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off", v)
}

// scheduleCommand is `zpctl schedule show|pause|resume|set`.
func (a *app) scheduleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Show, pause, resume or set the meta leader's scheduler (repairs, master balance)",
		Long: `The meta leader repairs and balances the cluster on its own:
  - a node DOWN longer than down-timeout (default 30m) has its replicas
    rebuilt on other nodes, by the placement rules (zone, rack, weight);
  - a partition with fewer replicas than its table asks for gets them back;
  - masters are spread by weight over the nodes, a few switchovers at a
    time, once no move is in flight (a node back after a failover gets its
    share again).
Cordoned nodes receive nothing. Every decision is recorded as an event.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the settings, what the scheduler is doing, DOWN and under-replicated partitions, recent events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runSchedule(cmd.Context(), client.ScheduleChange{})
		},
	}
	pause := &cobra.Command{
		Use:   "pause",
		Short: "Stop all automatic scheduling (moves already queued run on)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := true
			return a.runSchedule(cmd.Context(), client.ScheduleChange{Paused: &t})
		},
	}
	resume := &cobra.Command{
		Use:   "resume",
		Short: "Resume automatic scheduling",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := false
			return a.runSchedule(cmd.Context(), client.ScheduleChange{Paused: &f})
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE [KEY VALUE...]",
		Short: "Change settings: down-timeout, master-balance, max-moves-per-node, max-moves, fullsync-rate",
		Long: `Keys:
  down-timeout        how long a node stays DOWN before its replicas are
                      rebuilt elsewhere (default 30m; never: not at all)
  master-balance      on or off (default on)
  max-moves-per-node  moves that may involve one node at a time, manual
                      ones too (default: zpmeta --max-moves-per-node, 2)
  max-moves           scheduler moves in flight in the cluster (default 8)
  fullsync-rate       bytes per second each node serves full syncs at, all
                      its slaves together (e.g. 64MiB; at least 1MiB; off:
                      unlimited, the default)`,
		Example: "  zpctl schedule set down-timeout 1h\n  zpctl schedule set master-balance off max-moves 2",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 || len(args)%2 != 0 {
				return usagef("want KEY VALUE pairs, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch client.ScheduleChange
			for i := 0; i < len(args); i += 2 {
				parse, ok := scheduleKeys[args[i]]
				if !ok {
					return usagef("unknown setting %q: want down-timeout, master-balance, max-moves-per-node, max-moves or fullsync-rate", args[i])
				}
				if err := parse(args[i+1], &ch); err != nil {
					return &usageError{err}
				}
			}
			return a.runSchedule(cmd.Context(), ch)
		},
	}
	cmd.AddCommand(show, pause, resume, set)
	return cmd
}

// runSchedule sends ch (empty: a read) and prints the scheduler's status.
func (a *app) runSchedule(ctx context.Context, ch client.ScheduleChange) error {
	c, err := a.newClient(ctx)
	if err != nil {
		return &cmdFailed{err}
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	st, err := c.Schedule(cctx, ch)
	cancel()
	if err != nil {
		return &cmdFailed{fmt.Errorf("schedule: %w", err)}
	}
	return a.printer.Print(st, func(w io.Writer) error { return writeSchedule(w, st, time.Now()) })
}

func writeSchedule(w io.Writer, st *client.ScheduleStatus, now time.Time) error {
	s := st.Settings
	state := "running"
	if s.Paused {
		state = "PAUSED"
	}
	down := "never"
	if s.DownTimeoutMs >= 0 {
		down = (time.Duration(s.DownTimeoutMs) * time.Millisecond).String()
	}
	onOff := map[bool]string{true: "on", false: "off"}
	fmt.Fprintf(w, "Scheduler:  %s\nDoing:      %s\n", state, st.Doing)
	rate := "unlimited"
	if s.FullSyncRate > 0 {
		rate = bytesize.Format(s.FullSyncRate) + "/s"
	}
	fmt.Fprintf(w, "Settings:   down-timeout %s, master-balance %s, max-moves %d, max-moves-per-node %d, fullsync-rate %s\n",
		down, onOff[s.MasterBalance], s.MaxMoves, s.MaxMovesPerNode, rate)
	fmt.Fprintf(w, "In flight:  %d scheduler move(s); master imbalance: %d switchover(s)\n", st.MovesInFlight, st.MasterImbalance)
	if len(st.Down) > 0 {
		fmt.Fprintln(w, "\nDOWN nodes:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tREPLICAS\tDOWN FOR\tREPAIR")
		for _, d := range st.Down {
			since, repair := "?", "never"
			if d.DownSinceMs > 0 {
				since = now.Sub(time.UnixMilli(d.DownSinceMs)).Round(time.Second).String()
			}
			if d.RepairAtMs > 0 {
				if at := time.UnixMilli(d.RepairAtMs); at.After(now) {
					repair = "in " + at.Sub(now).Round(time.Second).String()
				} else {
					repair = "due"
				}
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", d.Addr, d.Replicas, since, repair)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if n := len(st.UnderReplicated); n > 0 {
		fmt.Fprintf(w, "\nUnder-replicated partitions: %d\n", n)
		for i, u := range st.UnderReplicated {
			if i == 10 {
				fmt.Fprintf(w, "  ... and %d more (-o json lists all)\n", n-i)
				break
			}
			fmt.Fprintf(w, "  %s/%d: %d of %d replicas\n", u.Table, u.Partition, u.Replicas, u.Want)
		}
	}
	if len(st.Events) > 0 {
		fmt.Fprintln(w, "\nRecent events:")
		events := st.Events
		if len(events) > 10 {
			events = events[len(events)-10:]
		}
		for _, e := range events {
			moves := ""
			if len(e.Moves) > 0 {
				moves = fmt.Sprintf(" (moves %s)", joinIDs(e.Moves))
			}
			fmt.Fprintf(w, "  %s  %-8s %s%s\n", time.UnixMilli(e.UnixMs).UTC().Format(time.RFC3339), e.Kind, e.Message, moves)
		}
	}
	return nil
}

func joinIDs(ids []uint64) string {
	parts := make([]string, 0, min(len(ids), 6))
	for i, id := range ids {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("+%d", len(ids)-i))
			break
		}
		parts = append(parts, strconv.FormatUint(id, 10))
	}
	return strings.Join(parts, ",")
}
