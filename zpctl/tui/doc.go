// Package tui is `zpctl top`: a live view of a cluster in the terminal,
// built on bubbletea, lipgloss and bubbles.
//
// The Model never talks to the cluster. A Poller surveys it every second
// and sends each survey into the program as a SnapshotMsg; actions the
// operator confirms run through an injected Runner, the plans their
// dialogs show come from a Planner, the Slowlog view's entries from a
// SlowLogReader and the Log view's lines from a NodeLogReader, each as a
// command whose result is a message. So the model is a function of the
// messages it is sent, and is tested by sending it canned ones and
// comparing the rendered views with golden files.
package tui
