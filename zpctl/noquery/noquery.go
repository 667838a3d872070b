// Package noquery keeps zpctl from querying the terminal when it starts.
//
// bubbletea's package init (v1) asks lipgloss for the terminal's
// background colour, which makes termenv write ESC]11;? and ESC[6n to
// stdout and read the answer from the terminal for up to 5 seconds. A
// terminal that does not answer (script, a serial console, some ssh
// clients) loses every key typed meanwhile: the answer to a [y/N] prompt
// never arrives. No zpctl command needs that colour (the TUI uses plain
// ANSI colours), so zpctl hides the terminal from termenv while the
// packages initialise, the one way termenv leaves: the CI variable, which
// it reads as "not a terminal".
//
// Go initialises packages in import-path order among those whose imports
// are ready; this package imports only os, so it is initialised long
// before bubbletea (TestConfirmPromptOnSilentTerminal in zpctl/cmd checks
// the built binary).
package noquery

import "os"

// ciVar is the variable termenv takes as "output is not a terminal".
const ciVar = "CI"

// set says that init set ciVar, which Restore then unsets.
var set bool

func init() {
	if _, ok := os.LookupEnv(ciVar); !ok {
		set = os.Setenv(ciVar, "1") == nil
	}
}

// Restore gives the process back the environment it was started with;
// main calls it first, once every package has been initialised, so that
// zpctl's colours and child processes see the real environment.
func Restore() {
	if set {
		os.Unsetenv(ciVar)
		set = false
	}
}
