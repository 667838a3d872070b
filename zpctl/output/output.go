// Package output renders zpctl's results for people (aligned text tables)
// and for programs (JSON or YAML). Every command builds one value for
// JSON, whose field names are a stable interface for scripts, and a table
// for text. YAML is the JSON document in YAML syntax, with the same names
// in the same order, so scripts may use either.
package output

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Format is how results are printed.
type Format int

const (
	// Text prints aligned columns for people.
	Text Format = iota
	// JSON prints one JSON document per command, for programs.
	JSON
	// YAML prints the JSON document as YAML.
	YAML
)

// ParseFormat parses the --output flag: "table" (or "text"), "json" and
// "yaml".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "table", "text":
		return Text, nil
	case "json":
		return JSON, nil
	case "yaml", "yml":
		return YAML, nil
	}
	return Text, fmt.Errorf("unknown output format %q (want table, json or yaml)", s)
}

func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case YAML:
		return "yaml"
	}
	return "table"
}

// Structured reports whether f is for programs (JSON or YAML).
func (f Format) Structured() bool { return f == JSON || f == YAML }

// Table is rows of cells under a header, for text output.
type Table struct {
	Header []string
	Rows   [][]string
}

// Printer writes results in one format.
type Printer struct {
	W      io.Writer
	Format Format
}

// Print writes v as JSON or YAML, or calls text to write the text form.
// text is only called for text output, so it may do work JSON does not
// need.
func (p *Printer) Print(v any, text func(w io.Writer) error) error {
	switch p.Format {
	case JSON:
		return WriteJSON(p.W, v)
	case YAML:
		return WriteYAML(p.W, v)
	}
	return text(p.W)
}

// Line writes v as JSON or YAML, or s and a newline as text.
func (p *Printer) Line(v any, s string) error {
	return p.Print(v, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, s)
		return err
	})
}

// WriteJSON writes v indented, with a final newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes t as columns separated by at least two spaces. Cells
// are written as they are: callers pass them through Cell when they may
// hold control characters.
func WriteTable(w io.Writer, t Table) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(t.Header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.Header, "\t"))
	}
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Cell makes bytes safe for one table cell: printable UTF-8 is shown as
// is, anything else (tabs, newlines, binary) quoted Go-style.
func Cell(b []byte) string {
	s := string(b)
	if s == "" {
		return `""`
	}
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// Bytes is a binary-safe JSON value: Value holds the bytes as a string when
// they are valid UTF-8 (Encoding "utf-8") and as standard base64 otherwise
// (Encoding "base64"), so that text stays readable in JSON and binary
// survives the round trip.
type Bytes struct {
	Value    string `json:"value"`
	Encoding string `json:"encoding"`
}

// EncodeBytes returns b as a Bytes.
func EncodeBytes(b []byte) Bytes {
	if utf8.Valid(b) {
		return Bytes{Value: string(b), Encoding: "utf-8"}
	}
	return Bytes{Value: base64.StdEncoding.EncodeToString(b), Encoding: "base64"}
}

// Decode returns the bytes b holds.
func (b Bytes) Decode() ([]byte, error) {
	switch b.Encoding {
	case "utf-8", "":
		return []byte(b.Value), nil
	case "base64":
		return base64.StdEncoding.DecodeString(b.Value)
	}
	return nil, fmt.Errorf("unknown encoding %q", b.Encoding)
}

// Key is a binary-safe JSON key, by the rule of Bytes: Key holds the key
// as a string when it is valid UTF-8 (KeyEncoding "utf-8") and as standard
// base64 otherwise (KeyEncoding "base64"). Embedded in a result, it gives
// the fields "key" and "key_encoding".
type Key struct {
	Key         string `json:"key"`
	KeyEncoding string `json:"key_encoding"`
}

// EncodeKey returns k as a Key.
func EncodeKey(k []byte) Key {
	b := EncodeBytes(k)
	return Key{Key: b.Value, KeyEncoding: b.Encoding}
}

// Decode returns the key k holds.
func (k Key) Decode() ([]byte, error) {
	return Bytes{Value: k.Key, Encoding: k.KeyEncoding}.Decode()
}

// Join joins a list for one cell; "-" when empty.
func Join(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ",")
}

// Count writes n with thousands separators: 10,000.
func Count(n uint64) string {
	d := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Dash returns s, or "-" when s is empty, so that columns stay aligned.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
