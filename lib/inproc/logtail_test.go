package inproc

import (
	"strings"
	"testing"
)

func TestLogTailKeepsTheLastLines(t *testing.T) {
	l := newLogTail(100)
	for i := range 50 {
		l.Write([]byte(strings.Repeat(string(rune('a'+i%26)), 9) + "\n"))
	}
	got := l.String()
	if !strings.HasPrefix(got, "[older lines dropped]\n") {
		t.Fatalf("no mark of the dropped lines: %q", got)
	}
	body := strings.TrimPrefix(got, "[older lines dropped]\n")
	if len(body) > 100 || !strings.HasSuffix(body, "xxxxxxxxx\n") {
		t.Fatalf("kept %d bytes ending %q; want at most 100 ending with the last line", len(body), body[max(0, len(body)-20):])
	}
	short := newLogTail(100)
	short.Write([]byte("one line\n"))
	if got := short.String(); got != "one line\n" {
		t.Fatalf("under the bound: %q", got)
	}
}
