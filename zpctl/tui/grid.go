package tui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// cell is one cell of a grid: text, and the style applied after padding
// (so colour codes never upset the alignment).
type cell struct {
	text  string
	style *lipgloss.Style
}

func plain(s string) cell { return cell{text: s} }

func styled(s string, st lipgloss.Style) cell { return cell{text: s, style: &st} }

// grid renders rows of cells in columns two spaces apart. The header, when
// given, is rendered dim. Lines are not truncated: fit does that.
func grid(st styles, header []string, rows [][]cell) []string {
	cols := len(header)
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	widths := make([]int, cols)
	for i, h := range header {
		widths[i] = ansi.StringWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], ansi.StringWidth(c.text))
		}
	}
	var out []string
	render := func(r []cell, style *lipgloss.Style) string {
		var b strings.Builder
		for i, c := range r {
			text := c.text
			if i < len(r)-1 {
				text += strings.Repeat(" ", widths[i]-ansi.StringWidth(c.text)+2)
			}
			switch {
			case c.style != nil:
				// Style the text, not the padding after it.
				b.WriteString(c.style.Render(c.text))
				b.WriteString(text[len(c.text):])
			case style != nil:
				b.WriteString(style.Render(text))
			default:
				b.WriteString(text)
			}
		}
		// An empty last column leaves padding behind.
		return strings.TrimRight(b.String(), " ")
	}
	if len(header) > 0 {
		h := make([]cell, len(header))
		for i, s := range header {
			h[i] = plain(s)
		}
		out = append(out, render(h, &st.dim))
	}
	for _, r := range rows {
		out = append(out, render(r, nil))
	}
	return out
}

// fit cuts every line to width cells (ANSI-aware) and the list to height
// lines, saying how many were left out.
func fit(lines []string, width, height int) []string {
	if height >= 0 && len(lines) > height {
		if height == 0 {
			return nil
		}
		more := len(lines) - height + 1
		lines = append(lines[:height-1:height-1], "  … "+strconv.Itoa(more)+" more")
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = ansi.Truncate(l, width, "…")
	}
	return out
}
