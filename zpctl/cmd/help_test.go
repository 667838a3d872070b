package cmd

import (
	"strings"
	"testing"
)

// TestGroupHelpNamesItsCommands: the one-line help of a command group, as
// `zpctl --help` lists it, names every command of the group, so that none
// (table flush, table quota, node remove) is found only by chance.
func TestGroupHelpNamesItsCommands(t *testing.T) {
	root := (&app{env: Env{Getenv: func(string) string { return "" }}}).rootCommand()
	for _, group := range []string{"table", "node"} {
		cmd, _, err := root.Find([]string{group})
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range cmd.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			if !strings.Contains(strings.ToLower(cmd.Short), sub.Name()) {
				t.Errorf("%s: short help %q does not name %q", group, cmd.Short, sub.Name())
			}
		}
	}
}
