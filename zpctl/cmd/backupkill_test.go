package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
)

// lockedBuffer is a bytes.Buffer safe to write from the command under
// test while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBackupKill kills (SIGKILL) the zpnode process a backup is copying
// a partition from, in the middle of the copy (slowed by --rate; the test
// waits until bytes have arrived): the backup completes from another
// replica, and the result verifies. Real processes (lib/testcluster);
// skipped with -short. Run it alone with
// `go test -run TestBackupKill -v ./zpctl/cmd`.
func TestBackupKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster; skipped with -short")
	}
	c := testcluster.Start(t, testcluster.Options{MetaArgs: []string{"--down-timeout", "1s"}})
	meta := strings.Join(c.MetaAddrs(), ",")
	zp := func(args ...string) result {
		return run(t, invocation{args: append([]string{"--meta", meta, "--timeout", "10s"}, args...)})
	}
	const table = "killed"
	if r := zp("table", "create", table, "--partitions", "1", "--replicas", "3", "--wait"); r.code != ExitOK {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := client.New(ctx, client.Options{MetaAddrs: c.MetaAddrs(), DefaultTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	writeKeys(t, cl, table, "k", 600, 1000) // about 600 KB in table files
	testcluster.Poll(t, 20*time.Second, func() error {
		if r := zp("stats", "repl", table); r.code != ExitOK || !strings.Contains(r.stdout, "all caught up: yes") {
			return fmt.Errorf("slaves not caught up: %d %s", r.code, r.stdout)
		}
		return nil
	})

	dir := t.TempDir()
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, Env{
			Args:   []string{"--meta", meta, "--timeout", "10s", "backup", "create", table, "--to", dir, "--name", "k", "--rate", "200K", "-o", "json"},
			Stdin:  strings.NewReader(""),
			Stdout: &stdout, Stderr: stderr,
			Getenv:     func(string) string { return "" },
			IsTerminal: func() bool { return false }, StderrIsTerminal: func() bool { return false },
		})
	}()
	from := regexp.MustCompile(`partition 0: from (\S+) \((\w+)\)`)
	var victim string
	testcluster.Poll(t, 20*time.Second, func() error {
		m := from.FindStringSubmatch(stderr.String())
		if m == nil {
			return fmt.Errorf("no source yet: %s", stderr.String())
		}
		victim = m[1]
		// Some bytes have arrived, and the copy is not over.
		var got int64
		filepath.WalkDir(filepath.Join(dir, "k"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				if fi, err := e.Info(); err == nil {
					got += fi.Size()
				}
			}
			return nil
		})
		if got == 0 {
			return fmt.Errorf("nothing fetched yet")
		}
		return nil
	})
	if err := c.NodeByAddr(victim).Kill(); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatalf("backup still running after the kill:\n%s", stderr.String())
	}
	if code != ExitOK || !strings.Contains(stderr.String(), "trying another replica") {
		t.Fatalf("backup after killing %s: exit %d\n%s\n%s", victim, code, stdout.String(), stderr.String())
	}
	var got backupCreateJSON
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, dir, "k")
	if src := m.Partitions[0].Source; src == victim || src == "" {
		t.Fatalf("partition 0 taken from %q; %s was killed", src, victim)
	}
	if r := run(t, invocation{args: []string{"backup", "verify", filepath.Join(dir, "k")}}); r.code != ExitOK {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("killed %s mid-copy; completed from %s (%s), %d bytes:\n%s", victim, m.Partitions[0].Source, m.Partitions[0].SourceRole, got.Bytes, stderr.String())
}
