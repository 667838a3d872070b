package buildinfo

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestMakefileBuildsEveryCommand checks that `make build` (and so `make
// run`) builds every command at the top of the module, so that whatever the
// README names is in bin/ after `make run`.
func TestMakefileBuildsEveryCommand(t *testing.T) {
	root := filepath.Join("..", "..")
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BINARIES\s*:=\s*(.*)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("Makefile has no BINARIES")
	}
	built := strings.Fields(string(m[1]))
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, e := range entries {
		src, err := os.ReadFile(filepath.Join(root, e.Name(), "main.go"))
		if err == nil && regexp.MustCompile(`(?m)^package main$`).Match(src) {
			commands = append(commands, e.Name())
		}
	}
	if len(commands) == 0 {
		t.Fatal("found no command at the top of the module")
	}
	for _, c := range commands {
		if !slices.Contains(built, c) {
			t.Errorf("Makefile BINARIES = %v lacks %s", built, c)
		}
	}
}
