package bulkload

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zeppelin-kv/zeppelin/lib/keyspace"
)

// Format is the syntax of an input file.
type Format string

// Input formats.
const (
	TSV   Format = "tsv"
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// TSVBase64 starts a TSV or CSV field written in base64 (zpctl export
// --format tsv writes fields that are not plain text so).
const TSVBase64 = "base64:"

// JSONLine is one record of JSON lines, as zpctl export --format jsonl
// writes it: key and value as text, or base64 in key_base64 and
// value_base64; expire_at_ms (Unix ms) when the key expires. A bulk load
// also takes ttl_ms, a time to live from the load.
type JSONLine struct {
	Key         *string `json:"key,omitempty"`
	KeyBase64   *string `json:"key_base64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
	ExpireAtMs  int64   `json:"expire_at_ms,omitempty"`
	TTLMs       int64   `json:"ttl_ms,omitempty"`
}

// FormatOf guesses a file's format from its name (.tsv, .csv, .jsonl or
// .json, before a .gz); "" when the name does not say.
func FormatOf(name string) Format {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	switch filepath.Ext(name) {
	case ".tsv", ".txt":
		return TSV
	case ".csv":
		return CSV
	case ".jsonl", ".json", ".ndjson":
		return JSONL
	}
	return ""
}

// Record is one key-value pair read from a file. The Record Parse gives
// emit may alias its read buffer: it is valid until emit returns.
type Record struct {
	Key, Value []byte
	ExpireAtMs int64
}

// Limits are what a record must respect to be loaded.
type Limits struct {
	MaxValueSize int
	// NowMs is the load's time: ttl_ms counts from it, and a record that
	// expired before it is skipped.
	NowMs int64
	// TTLMs applies to records without an expiry of their own; 0 none.
	TTLMs int64
}

// BadLine is a line that could not be loaded.
type BadLine struct {
	File string
	Line int64
	Err  error
}

func (b BadLine) Error() string { return fmt.Sprintf("%s:%d: %v", b.File, b.Line, b.Err) }

// errExpired marks a record that expired before the load: skipped, not bad.
var errExpired = errors.New("expired")

// maxLine bounds a line: a key, a value and an expiry in base64 at most.
const maxLine = 2*(keyspace.MaxKeySize+keyspace.MaxValueSize) + 1024

// openInput returns r decompressed when it starts with gzip's magic.
func openInput(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(zr, 1<<20), nil
	}
	return br, nil
}

// Parse reads the records of r (named name, in format f) and gives each
// good one to emit and each bad one to bad, with its line number; an
// error of either stops it.
func Parse(name string, r io.Reader, f Format, lim Limits, emit func(Record) error, bad func(BadLine) error) error {
	in, err := openInput(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	_, err = parse(name, in, f, lim, emit, bad)
	return err
}

// parse is Parse of a decompressed input; it returns the lines it read
// (TSV and JSON lines; 0 for CSV).
func parse(name string, in io.Reader, f Format, lim Limits, emit func(Record) error, bad func(BadLine) error) (lines int64, err error) {
	check := func(line int64, rec Record, err error) error {
		if err == nil {
			err = lim.check(&rec)
		}
		switch {
		case errors.Is(err, errExpired):
			return nil
		case err != nil:
			return bad(BadLine{File: name, Line: line, Err: err})
		}
		return emit(rec)
	}
	if f == CSV {
		cr := csv.NewReader(in)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		for {
			fields, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return 0, nil
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if err := bad(BadLine{File: name, Line: int64(pe.StartLine), Err: pe.Err}); err != nil {
					return 0, err
				}
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			line, _ := cr.FieldPos(0)
			rec, ferr := fieldsRecord(fields)
			if err := check(int64(line), rec, ferr); err != nil {
				return 0, err
			}
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var line int64
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var rec Record
		var err error
		switch f {
		case JSONL:
			rec, err = jsonRecord(b, lim)
		default:
			rec, err = tsvRecord(bytes.TrimSuffix(b, []byte{'\r'}))
		}
		if err := check(line, rec, err); err != nil {
			return line, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return line, bad(BadLine{File: name, Line: line + 1, Err: fmt.Errorf("line over %d bytes", maxLine)})
		}
		return line, fmt.Errorf("%s: %w", name, err)
	}
	return line, nil
}

// tsvRecord reads a TSV line as fieldsRecord does, without a copy for the
// common line (no base64): key and value alias b.
func tsvRecord(b []byte) (Record, error) {
	i := bytes.IndexByte(b, '\t')
	if i < 0 || bytes.HasPrefix(b, []byte(TSVBase64)) || bytes.Contains(b[i+1:], []byte(TSVBase64)) {
		return fieldsRecord(strings.Split(string(b), "\t"))
	}
	rest := b[i+1:]
	var exp []byte
	if j := bytes.IndexByte(rest, '\t'); j >= 0 {
		rest, exp = rest[:j], rest[j+1:]
		if bytes.IndexByte(exp, '\t') >= 0 {
			return fieldsRecord(strings.Split(string(b), "\t"))
		}
	}
	rec := Record{Key: b[:i:i], Value: rest}
	if len(exp) > 0 {
		var err error
		if rec.ExpireAtMs, err = strconv.ParseInt(string(exp), 10, 64); err != nil || rec.ExpireAtMs < 0 {
			return Record{}, fmt.Errorf("expiry %q is not Unix milliseconds", exp)
		}
	}
	return rec, nil
}

// fieldsRecord reads KEY, VALUE and an optional EXPIRE_AT_MS (0: none),
// as zpctl export --format tsv writes them.
func fieldsRecord(fields []string) (Record, error) {
	if len(fields) < 2 || len(fields) > 3 {
		return Record{}, fmt.Errorf("%d fields, want KEY, VALUE and an optional EXPIRE_AT_MS", len(fields))
	}
	k, err := field(fields[0])
	if err != nil {
		return Record{}, fmt.Errorf("key: %w", err)
	}
	v, err := field(fields[1])
	if err != nil {
		return Record{}, fmt.Errorf("value: %w", err)
	}
	rec := Record{Key: k, Value: v}
	if len(fields) == 3 && fields[2] != "" {
		if rec.ExpireAtMs, err = strconv.ParseInt(fields[2], 10, 64); err != nil || rec.ExpireAtMs < 0 {
			return Record{}, fmt.Errorf("expiry %q is not Unix milliseconds", fields[2])
		}
	}
	return rec, nil
}

func field(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, TSVBase64); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(s), nil
}

func jsonRecord(b []byte, lim Limits) (Record, error) {
	var l JSONLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Record{}, err
	}
	var rec Record
	var err error
	switch {
	case l.Key != nil && l.KeyBase64 == nil:
		rec.Key = []byte(*l.Key)
	case l.KeyBase64 != nil && l.Key == nil:
		if rec.Key, err = base64.StdEncoding.DecodeString(*l.KeyBase64); err != nil {
			return Record{}, fmt.Errorf("key_base64: %w", err)
		}
	default:
		return Record{}, errors.New("want one of key and key_base64")
	}
	switch {
	case l.Value != nil && l.ValueBase64 == nil:
		rec.Value = []byte(*l.Value)
	case l.ValueBase64 != nil && l.Value == nil:
		if rec.Value, err = base64.StdEncoding.DecodeString(*l.ValueBase64); err != nil {
			return Record{}, fmt.Errorf("value_base64: %w", err)
		}
	default:
		return Record{}, errors.New("want one of value and value_base64")
	}
	if l.ExpireAtMs < 0 || l.TTLMs < 0 || l.ExpireAtMs != 0 && l.TTLMs != 0 {
		return Record{}, errors.New("expire_at_ms and ttl_ms: at most one, not negative")
	}
	rec.ExpireAtMs = l.ExpireAtMs
	if l.TTLMs > 0 {
		rec.ExpireAtMs = lim.NowMs + l.TTLMs
	}
	return rec, nil
}

// check applies the limits (the node's: keyspace.MaxKeySize and the
// node's value limit) and the default TTL.
func (lim Limits) check(rec *Record) error {
	switch {
	case len(rec.Key) == 0:
		return errors.New("empty key")
	case len(rec.Key) > keyspace.MaxKeySize:
		return fmt.Errorf("key of %d bytes over the limit of %d", len(rec.Key), keyspace.MaxKeySize)
	case lim.MaxValueSize > 0 && len(rec.Value) > lim.MaxValueSize:
		return fmt.Errorf("value of %d bytes over the limit of %d", len(rec.Value), lim.MaxValueSize)
	}
	if rec.ExpireAtMs == 0 && lim.TTLMs > 0 {
		rec.ExpireAtMs = lim.NowMs + lim.TTLMs
	}
	if rec.ExpireAtMs != 0 && rec.ExpireAtMs <= lim.NowMs {
		return errExpired
	}
	return nil
}
