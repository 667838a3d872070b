package cmd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestConfirmPromptOnSilentTerminal runs the zpctl binary on a pseudo
// terminal that, like `script` or a serial console, answers no terminal
// queries, and types "n" before the prompt is up, as a quick operator
// does. zpctl must not query the terminal (a query waits up to 5s for an
// answer, reading and dropping what is typed meanwhile, so the prompt then
// waited for ever): the answer reaches the prompt and declining exits 8.
func TestConfirmPromptOnSilentTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds zpctl; skipped with -short")
	}
	bin := zpctlBinary(t)
	cmd := exec.Command(bin, "table", "flush", "big", "--meta", "127.0.0.1:1")
	// CI (set where CI runs) hides the terminal from the terminal library,
	// which then never queries it: the operator's environment has no CI.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "TERM=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "TERM=xterm-256color", "HOME="+t.TempDir())
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if _, err := tty.Write([]byte("n\n")); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("zpctl still waiting for an answer 30s after it was typed; the terminal saw %q", screen.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != ExitAborted {
		t.Errorf("exit: %v, want code %d (declined)", err, ExitAborted)
	}
	// The output is read by the goroutine: wait for the prompt to be in it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		out := screen.String()
		mu.Unlock()
		if strings.Contains(out, "[y/N]") || time.Now().After(deadline) {
			if !strings.Contains(out, "[y/N]") {
				t.Errorf("no prompt on the terminal: %q", out)
			}
			for _, query := range []string{"\x1b]11;?", "\x1b[6n"} {
				if strings.Contains(out, query) {
					t.Errorf("zpctl queried the terminal (%q): %q", query, out)
				}
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
