package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
)

// nodeLogsJSON is `node logs --output json`.
type nodeLogsJSON struct {
	Addr string `json:"addr"`
	// Level is the lowest level asked, "INFO" by default.
	Level string `json:"level"`
	// Lines are oldest first.
	Lines []nodeLogLineJSON `json:"lines"`
}

type nodeLogLineJSON struct {
	client.LogLine
	// Time is TimeMs in RFC 3339 (UTC).
	Time string `json:"time"`
}

// defaultNodeLogLines is how many lines `node logs` shows by default.
const defaultNodeLogLines = 100

// logLevels are the levels --level takes, which nodes read alike.
var logLevels = []string{"debug", "info", "warn", "error"}

// parseLogLevel checks a --level and returns its name as the node's log
// prints it.
func parseLogLevel(s string) (string, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return "", usagef("--level %q: want %s", s, strings.Join(logLevels, ", "))
	}
	return l.String(), nil
}

func (a *app) nodeLogsCommand() *cobra.Command {
	var (
		lines int
		level string
	)
	cmd := &cobra.Command{
		Use:   "logs ADDR",
		Short: "Show a node's recent log lines",
		Long: `Ask the node at ADDR for its last log lines (INFO log), oldest first: the
time, the level, the message and its attributes as key=value text, as the
node's own log prints them.

A node keeps its last 512 records at INFO and above in memory, whatever its
--log-level, each cut to 1 KiB; a restart empties them. --lines shows the
newest K of those at --level or above (0: all it keeps).

A node that does not answer is an error (exit 4 when unreachable), with
nothing on stdout.`,
		Example: `  zpctl node logs 127.0.0.1:9231
  zpctl node logs 127.0.0.1:9231 --level warn --lines 20
  zpctl node logs 127.0.0.1:9231 -o json | jq -r '.lines[] | select(.message == "new topology") | .attrs'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeNodes,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if lines < 0 {
				return usagef("--lines %d: want 0 (all) or more", lines)
			}
			name, err := parseLogLevel(level)
			if err != nil {
				return err
			}
			nctx, cancel := context.WithTimeout(ctx, a.nodeTimeout())
			defer cancel()
			got, err := c.NodeLog(nctx, args[0], lines, level)
			if err != nil {
				return err
			}
			doc := nodeLogsJSON{Addr: args[0], Level: name, Lines: make([]nodeLogLineJSON, 0, len(got))}
			for _, l := range got {
				doc.Lines = append(doc.Lines, nodeLogLineJSON{LogLine: l, Time: time.UnixMilli(l.TimeMs).UTC().Format(time.RFC3339Nano)})
			}
			return a.printer.Print(doc, func(w io.Writer) error { return writeNodeLogs(w, doc, time.Local) })
		}),
	}
	cmd.Flags().IntVar(&lines, "lines", defaultNodeLogLines, "show the newest K lines; 0 = all the node keeps")
	cmd.Flags().StringVar(&level, "level", "info", "lowest level shown: "+strings.Join(logLevels, ", "))
	cmd.RegisterFlagCompletionFunc("level", cobra.FixedCompletions(logLevels, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// nodeLogLine is one line of `node logs`: local time, level, message,
// attributes.
func nodeLogLine(l client.LogLine, loc *time.Location) string {
	s := fmt.Sprintf("%s %-5s %s", time.UnixMilli(l.TimeMs).In(loc).Format("2006-01-02 15:04:05.000"), l.Level, l.Message)
	if l.Attrs != "" {
		s += " " + l.Attrs
	}
	return s
}

func writeNodeLogs(w io.Writer, doc nodeLogsJSON, loc *time.Location) error {
	if len(doc.Lines) == 0 {
		_, err := fmt.Fprintf(w, "no log lines at %s or above on %s\n", doc.Level, doc.Addr)
		return err
	}
	for _, l := range doc.Lines {
		if _, err := fmt.Fprintln(w, nodeLogLine(l.LogLine, loc)); err != nil {
			return err
		}
	}
	return nil
}
