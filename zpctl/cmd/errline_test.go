package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

func TestBriefError(t *testing.T) {
	notFound := status.New(zppb.Code_NOT_FOUND, "key not found")
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	dialErr := fmt.Errorf("%w: %w: dial 127.0.0.1:1: %w", rpc.ErrNotSent, rpc.ErrTransport, dial)
	metaDown := fmt.Errorf("%w: meta 127.0.0.1:1: %w", client.ErrMetaUnreachable, dialErr)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"status", fmt.Errorf("client: get: node 127.0.0.1:9231: %w", notFound), "NOT_FOUND: key not found"},
		{"zpctl's context stays", fmt.Errorf("setmaster: plan: %w", fmt.Errorf("client: plan: %w", status.New(zppb.Code_INVALID_ARGUMENT, "not a slave"))),
			"setmaster: plan: INVALID_ARGUMENT: not a slave"},
		{"meta unreachable", fmt.Errorf("client: list tables: %w", metaDown), "no meta server answered: dial tcp: connect: connection refused"},
		{"timed out", fmt.Errorf("client: get: %w (last error: %w)", context.DeadlineExceeded, metaDown),
			"timed out: no meta server answered: dial tcp: connect: connection refused"},
		{"timed out, nothing else", fmt.Errorf("client: get: %w", context.DeadlineExceeded), "timed out"},
		{"unknown outcome", fmt.Errorf("client: set: %w: %w", client.ErrUnknownOutcome, fmt.Errorf("node x: %w", status.New(zppb.Code_WAIT, "syncing"))),
			client.ErrUnknownOutcome.Error() + ": WAIT: syncing"},
		{"no master", fmt.Errorf("client: get: %w (last error: %w)", context.DeadlineExceeded, fmt.Errorf("%w: table %q partition %d", client.ErrNoMaster, "t", 3)),
			`timed out: partition has no master: table "t" partition 3`},
		{"every key of a multi-key call", &client.MultiError{Op: "mget", Total: 3, Errs: []client.KeyError{
			{Index: 0, Key: []byte("a"), Err: fmt.Errorf("client: mget: node x: %w", status.New(zppb.Code_WAIT, "w"))},
			{Index: 2, Key: []byte("c"), Err: fmt.Errorf("client: mget: %w", context.DeadlineExceeded)}}},
			`mget: 2 of 3 keys failed; key "a": WAIT: w; key "c": timed out`},
		{"zpctl's wrapping that begins with the library's error", fmt.Errorf("setmaster: %w", fmt.Errorf("%w; the plan changed meanwhile", fmt.Errorf("client: queue: %w", status.New(zppb.Code_STALE_EPOCH, "epoch 9")))),
			"setmaster: STALE_EPOCH: epoch 9; the plan changed meanwhile"},
		{"zpctl's own", usagef("--limit must not be negative"), "--limit must not be negative"},
		{"no cause found", errors.New("client: closed"), "client: closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := briefError(tt.err); got != tt.want {
				t.Fatalf("briefError = %q, want %q\nfull: %v", got, tt.want, tt.err)
			}
		})
	}
}

// Errors are one line; the chain is under --verbose and in JSON's detail.
func TestErrorLine(t *testing.T) {
	cl := sharedCluster(t)
	table := addTable(t, cl, 2, 1).Name
	r := zpctl(t, cl, "get", table, "nobody")
	if r.code != ExitNotFound || r.stderr != "zpctl: NOT_FOUND: key not found\n" {
		t.Fatalf("exit %d, stderr %q, want exit 3 and one line", r.code, r.stderr)
	}
	r = zpctl(t, cl, "get", table, "nobody", "-v")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 2 || lines[0] != "zpctl: NOT_FOUND: key not found" || !strings.HasPrefix(lines[1], "  detail: client: get: node ") {
		t.Fatalf("--verbose stderr:\n%s", r.stderr)
	}
	r = zpctl(t, cl, "get", table, "nobody", "-o", "json")
	var got errorJSON
	if err := json.Unmarshal([]byte(r.stderr), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stderr)
	}
	if got.Error != "NOT_FOUND: key not found" || got.Status != "NOT_FOUND" || got.ExitCode != ExitNotFound ||
		!strings.HasPrefix(got.Detail, "client: get: node ") {
		t.Fatalf("JSON error %+v", got)
	}
}

// A usage error points at the help of the command that refused it.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantLine string
		wantHelp string
	}{
		{[]string{"completion", "bogus"}, `unknown command "bogus" for "zpctl completion"`, "zpctl completion"},
		{[]string{"completion"}, `missing command for "zpctl completion"`, "zpctl completion"},
		{[]string{"get", "t"}, "accepts 2 arg(s), received 1", "zpctl get"},
		{[]string{"table", "list", "--frob"}, "unknown flag: --frob", "zpctl table list"},
		{[]string{"table", "frob"}, `unknown command "frob" for "zpctl table"`, "zpctl table"},
		{[]string{"frob"}, `unknown command "frob" for "zpctl"`, "zpctl"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, invocation{args: append([]string{"--meta", "127.0.0.1:1"}, tt.args...)})
			want := "zpctl: " + tt.wantLine + "\nRun '" + tt.wantHelp + " --help' for usage.\n"
			if r.code != ExitUsage || r.stderr != want || r.stdout != "" {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %q\nwant:   %q", r.code, r.stdout, r.stderr, want)
			}
		})
	}
}

// --meta at a server of another protocol says so.
func TestForeignMeta(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				nc.Read(make([]byte, 512))
				nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n400 Bad Request"))
			}()
		}
	}()
	r := run(t, invocation{args: []string{"--meta", ln.Addr().String(), "--timeout", "1s", "table", "list"}})
	want := fmt.Sprintf("zpctl: no meta server answered: %s is not a Zeppelin server (it sent %q)\n", ln.Addr(), "HTTP/1.1 400 Bad Request")
	if r.code != ExitUnavailable || r.stderr != want {
		t.Fatalf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
}
