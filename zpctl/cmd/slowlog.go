package cmd

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// slowlogJSON is `slowlog --output json`.
type slowlogJSON struct {
	// Table is --table, "" for all.
	Table string `json:"table"`
	// Nodes are the nodes asked, with the error of those that did not
	// answer.
	Nodes   []slowlogNodeJSON  `json:"nodes"`
	Entries []slowlogEntryJSON `json:"entries"`
	// Truncated is true when --limit left entries out.
	Truncated bool `json:"truncated"`
}

type slowlogNodeJSON struct {
	Addr    string `json:"addr"`
	Entries int    `json:"entries"`
	Error   string `json:"error"`
}

type slowlogEntryJSON struct {
	// TimeMs is when the request started, in Unix milliseconds; Time is
	// the same in RFC 3339 (UTC).
	TimeMs  int64  `json:"time_ms"`
	Time    string `json:"time"`
	Node    string `json:"node"`
	Command string `json:"command"`
	Table   string `json:"table"`
	// Key is the request's key as the node keeps it (cut to 64 bytes),
	// null for commands without one.
	Key        *output.Bytes `json:"key"`
	DurationUs int64         `json:"duration_us"`
	Code       string        `json:"code"`
}

// defaultSlowlogLimit is how many entries `slowlog` shows by default.
const defaultSlowlogLimit = 50

func (a *app) slowlogCommand() *cobra.Command {
	var (
		table string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "slowlog [NODE...]",
		Short: "Show the nodes' slow logs, merged, newest first",
		Long: `Read the slow log of the given nodes, or of every UP node, and show the
entries merged, newest first: when the request started, the node, the
command, the table, the key (as text when printable, else hex; nodes keep
its first 64 bytes), how long the node took, and the status code.

A node logs a request that took at least its --slowlog-threshold (10ms by
default) and keeps its last --slowlog-size entries (128). Replication long
polls are never logged.

A node that does not answer is named on stderr and sets the exit code; the
entries of the others are still printed. When none answers (nothing
listening, an unknown --table) nothing is printed on stdout.`,
		Example: `  zpctl slowlog
  zpctl slowlog --table users --limit 10
  zpctl slowlog 127.0.0.1:9231 -o json | jq '.entries[] | select(.duration_us > 100000)'`,
		ValidArgsFunction: a.completeNodes,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if limit < 0 {
				return usagef("--limit %d: want 0 (all) or more", limit)
			}
			addrs := args
			if len(addrs) == 0 {
				nodes, _, err := c.ListNodes(ctx)
				if err != nil {
					return err
				}
				for _, n := range nodes {
					if n.State == zppb.NodeState_UP.String() {
						addrs = append(addrs, n.Addr)
					}
				}
				if len(addrs) == 0 {
					return status.New(zppb.Code_UNAVAILABLE, "no node is UP")
				}
			}
			nctx, cancel := context.WithTimeout(ctx, a.nodeTimeout())
			defer cancel()
			infos := c.InfoNodes(nctx, addrs, table, client.InfoSlowlog)
			doc, err := slowlogFromInfo(infos, table, limit)
			if answered(doc) == 0 {
				// Nothing to show: an empty listing would read as "no
				// slow requests".
				return err
			}
			perr := a.printer.Print(doc, func(w io.Writer) error { return writeSlowlog(w, doc, time.Local) })
			if err != nil {
				return err
			}
			return perr
		}),
	}
	cmd.Flags().StringVar(&table, "table", "", "only this table")
	cmd.Flags().IntVar(&limit, "limit", defaultSlowlogLimit, "show the newest N entries; 0 = all")
	cmd.RegisterFlagCompletionFunc("table", a.completeTables)
	return cmd
}

// slowlogFromInfo merges the nodes' slow logs newest first, cut to limit
// (0: all). The error is that of the nodes that did not answer (see
// nodesError).
func slowlogFromInfo(infos []client.NodeInfo, table string, limit int) (slowlogJSON, error) {
	doc := slowlogJSON{Table: table, Nodes: []slowlogNodeJSON{}, Entries: []slowlogEntryJSON{}}
	var errs []error
	for _, ni := range infos {
		nj := slowlogNodeJSON{Addr: ni.Addr}
		if ni.Err != nil {
			nj.Error = ni.Err.Error()
			errs = append(errs, ni.Err)
		}
		for _, e := range ni.Info.Slowlog {
			ej := slowlogEntryJSON{TimeMs: e.TimeMs, Time: time.UnixMilli(e.TimeMs).UTC().Format(time.RFC3339Nano),
				Node: ni.Addr, Command: e.Command, Table: e.Table, DurationUs: e.DurationUs, Code: e.Code}
			if len(e.Key) > 0 {
				b := output.EncodeBytes(e.Key)
				ej.Key = &b
			}
			doc.Entries = append(doc.Entries, ej)
			nj.Entries++
		}
		doc.Nodes = append(doc.Nodes, nj)
	}
	slices.SortStableFunc(doc.Entries, func(a, b slowlogEntryJSON) int {
		return cmp.Or(cmp.Compare(b.TimeMs, a.TimeMs), cmp.Compare(a.Node, b.Node))
	})
	if limit > 0 && len(doc.Entries) > limit {
		doc.Entries, doc.Truncated = doc.Entries[:limit], true
	}
	return doc, nodesError(errs, len(infos))
}

// answered counts the nodes of doc that answered.
func answered(doc slowlogJSON) int {
	n := 0
	for _, nj := range doc.Nodes {
		if nj.Error == "" {
			n++
		}
	}
	return n
}

// nodesError is the failure of some of total nodes asked, in one line: the
// error itself when one failed, else how many and the first. errors.Is and
// errors.As see every one of them.
func nodesError(errs []error, total int) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return &multiNodeError{errs: errs, total: total}
}

type multiNodeError struct {
	errs  []error
	total int
}

func (e *multiNodeError) Error() string {
	return fmt.Sprintf("%d of %d nodes failed; first: %v", len(e.errs), e.total, e.errs[0])
}

func (e *multiNodeError) Unwrap() []error { return e.errs }

func writeSlowlog(w io.Writer, doc slowlogJSON, loc *time.Location) error {
	if len(doc.Entries) == 0 {
		_, err := fmt.Fprintf(w, "no slow requests logged on %d node(s)\n", answered(doc))
		return err
	}
	t := output.Table{Header: []string{"TIME", "NODE", "COMMAND", "TABLE", "KEY", "DURATION", "CODE"}}
	for _, e := range doc.Entries {
		key := "-"
		if e.Key != nil {
			b, _ := e.Key.Decode()
			key = keyText(b)
		}
		t.Rows = append(t.Rows, []string{time.UnixMilli(e.TimeMs).In(loc).Format("2006-01-02 15:04:05.000"), e.Node, e.Command,
			output.Dash(e.Table), key, (time.Duration(e.DurationUs) * time.Microsecond).String(), e.Code})
	}
	if err := output.WriteTable(w, t); err != nil {
		return err
	}
	if doc.Truncated {
		_, err := fmt.Fprintf(w, "\nnewest %d entries shown (--limit 0 for all)\n", len(doc.Entries))
		return err
	}
	return nil
}

// slowlogKeyBytes is how much of a key nodes keep in the slow log.
const slowlogKeyBytes = 64

// keyText is a key for one cell: as is when it is printable text, else
// 0x and its bytes in hex. A key the node cut in the middle of a
// character is text all the same, without that character's bytes.
func keyText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) && len(s) == slowlogKeyBytes {
		for cut := 1; cut < utf8.UTFMax; cut++ {
			if utf8.ValidString(s[:len(s)-cut]) {
				s = s[:len(s)-cut]
				break
			}
		}
	}
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return "0x" + hex.EncodeToString(b)
}
