package cmd

import (
	"bufio"
	"context"
	"fmt"
	"strings"
)

// confirm asks the operator a yes/no question on the terminal; only "y" or
// "yes" proceeds. Without a terminal there is nobody to ask, and a script
// that forgot --yes must fail rather than hang or guess, so that is a usage
// error.
func (a *app) confirm(ctx context.Context, question string) error {
	if a.env.IsTerminal == nil || !a.env.IsTerminal() {
		return usagef("refusing without --yes: stdin is not a terminal to confirm on")
	}
	fmt.Fprintf(a.env.Stderr, "%s [y/N] ", question)
	answer := make(chan string, 1)
	go func() {
		// Left blocked on stdin if ctx ends first; the process is exiting.
		line, _ := bufio.NewReader(a.env.Stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return nil
		}
		return errAborted
	case <-ctx.Done():
		fmt.Fprintln(a.env.Stderr)
		return fmt.Errorf("%w: %w", errAborted, ctx.Err())
	}
}
