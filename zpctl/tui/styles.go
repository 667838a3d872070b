package tui

import (
	"github.com/charmbracelet/lipgloss"

	"github.com/zeppelin-kv/zeppelin/zpctl/health"
)

// styles are built from one renderer, so that a test can render without
// colour (termenv.Ascii) and the program renders for its terminal.
type styles struct {
	header    lipgloss.Style
	tab       lipgloss.Style
	activeTab lipgloss.Style
	title     lipgloss.Style
	dim       lipgloss.Style
	ok        lipgloss.Style
	warn      lipgloss.Style
	crit      lipgloss.Style
	selected  lipgloss.Style
	dialog    lipgloss.Style
	status    lipgloss.Style
	helpKey   lipgloss.Style
	helpDesc  lipgloss.Style
	helpSep   lipgloss.Style
}

// Plain ANSI-256 colours, not adaptive ones: an adaptive colour makes
// lipgloss query the terminal's background, which a test has not got.
const (
	colGreen  = lipgloss.Color("34")
	colYellow = lipgloss.Color("178")
	colRed    = lipgloss.Color("196")
	colBlue   = lipgloss.Color("39")
	colGrey   = lipgloss.Color("244")
	colBarBg  = lipgloss.Color("236")
	colWhite  = lipgloss.Color("252")
)

func newStyles(r *lipgloss.Renderer) styles {
	s := r.NewStyle
	return styles{
		header:    s().Bold(true).Foreground(colWhite).Background(colBarBg),
		tab:       s().Foreground(colGrey),
		activeTab: s().Bold(true).Foreground(colBlue).Underline(true),
		title:     s().Bold(true),
		dim:       s().Foreground(colGrey),
		ok:        s().Foreground(colGreen),
		warn:      s().Foreground(colYellow),
		crit:      s().Foreground(colRed).Bold(true),
		selected:  s().Reverse(true),
		dialog:    s().Border(lipgloss.RoundedBorder()).BorderForeground(colYellow).Padding(0, 1),
		status:    s().Foreground(colYellow),
		helpKey:   s().Foreground(colBlue),
		helpDesc:  s().Foreground(colGrey),
		helpSep:   s().Foreground(colGrey),
	}
}

// level is the health of something shown: it picks the colour.
type level int

const (
	levelOK level = iota
	levelWarn
	levelCrit
	levelNone // not judged: plain text
)

// levelOf is the colour of a checkup finding: information (a cordon,
// versions mixed during an upgrade) is not a fault.
func levelOf(sev health.Severity) level {
	switch sev {
	case health.Critical:
		return levelCrit
	case health.Warning:
		return levelWarn
	}
	return levelOK
}

func (st styles) of(l level) lipgloss.Style {
	switch l {
	case levelOK:
		return st.ok
	case levelWarn:
		return st.warn
	case levelCrit:
		return st.crit
	}
	return lipgloss.Style{}
}
