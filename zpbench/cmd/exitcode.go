package cmd

import (
	"errors"
	"fmt"
)

// Exit codes of zpbench. Scripts and `make bench` branch on them.
//
//	0  OK         the benchmark ran and its error rate was within
//	              --max-error-rate
//	1  Failed     it could not run: a target unreachable, a table that
//	              could not be created, a load that failed, a suite step
//	              that failed
//	2  Usage      bad command line: unknown command or flag, bad values,
//	              no target or too many
//	3  ErrorRate  it ran, but more operations failed than --max-error-rate
//	              allows (the report is still written)
const (
	ExitOK        = 0
	ExitFailed    = 1
	ExitUsage     = 2
	ExitErrorRate = 3
)

const exitCodeHelp = `Exit codes:
  0  ok
  1  failed: target unreachable, table or load failed, suite step failed
  2  usage: bad command line
  3  error rate above --max-error-rate (the report is still written)`

// usageError marks a bad command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errorRateError is a run whose error rate was over the limit.
type errorRateError struct {
	rate, limit float64
}

func (e *errorRateError) Error() string {
	return fmt.Sprintf("error rate %.4f%% is above --max-error-rate %.4f%%", 100*e.rate, 100*e.limit)
}

// ExitCode maps an error to zpbench's exit code.
func ExitCode(err error) int {
	var ue *usageError
	var ee *errorRateError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ee):
		return ExitErrorRate
	}
	return ExitFailed
}
