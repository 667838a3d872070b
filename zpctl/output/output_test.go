package output

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"table", Text, false},
		{"text", Text, false},
		{"JSON", JSON, false},
		{"yaml", YAML, false},
		{"xml", Text, true},
		{"", Text, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseFormat(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestCell(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("plain"), "plain"},
		{[]byte("héllo wörld"), "héllo wörld"},
		{nil, `""`},
		{[]byte("a\tb"), `"a\tb"`},
		{[]byte("line\n"), `"line\n"`},
		{[]byte{0xff, 0x00}, `"\xff\x00"`},
	}
	for _, tt := range tests {
		if got := Cell(tt.in); got != tt.want {
			t.Errorf("Cell(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestBytesRoundTrip(t *testing.T) {
	tests := []struct {
		in       []byte
		encoding string
	}{
		{[]byte("text"), "utf-8"},
		{[]byte{}, "utf-8"},
		{[]byte{0xff, 0xfe, 0x00}, "base64"},
	}
	for _, tt := range tests {
		b := EncodeBytes(tt.in)
		if b.Encoding != tt.encoding {
			t.Errorf("EncodeBytes(%q).Encoding = %s, want %s", tt.in, b.Encoding, tt.encoding)
		}
		out, err := b.Decode()
		if err != nil || !bytes.Equal(out, tt.in) {
			t.Errorf("round trip of %q = %q, %v", tt.in, out, err)
		}
	}
	if _, err := (Bytes{Value: "x", Encoding: "rot13"}).Decode(); err == nil {
		t.Error("unknown encoding decoded")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, in := range [][]byte{[]byte("user:1"), []byte("bin\x01\xff")} {
		k := EncodeKey(in)
		if b := EncodeBytes(in); k.Key != b.Value || k.KeyEncoding != b.Encoding {
			t.Errorf("EncodeKey(%q) = %+v, not the rule of EncodeBytes (%+v)", in, k, b)
		}
		if out, err := k.Decode(); err != nil || !bytes.Equal(out, in) {
			t.Errorf("round trip of %q = %q, %v", in, out, err)
		}
	}
}

func TestPrinter(t *testing.T) {
	v := struct {
		Name string `json:"name"`
	}{"t"}
	tests := []struct {
		format Format
		want   string
	}{
		{Text, "NAME  SIZE\nt     10\nlong  2\n"},
		{JSON, "{\n  \"name\": \"t\"\n}\n"},
		{YAML, "name: t\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		p := &Printer{W: &buf, Format: tt.format}
		err := p.Print(v, func(w io.Writer) error {
			return WriteTable(w, Table{Header: []string{"NAME", "SIZE"}, Rows: [][]string{{"t", "10"}, {"long", "2"}}})
		})
		if err != nil || buf.String() != tt.want {
			t.Errorf("%v: %q, %v; want %q", tt.format, buf.String(), err, tt.want)
		}
	}
	var buf bytes.Buffer
	(&Printer{W: &buf}).Line(v, "OK")
	if buf.String() != "OK\n" {
		t.Errorf("Line = %q", buf.String())
	}
	if Join(nil) != "-" || Join([]string{"a", "b"}) != "a,b" || Dash("") != "-" || !strings.HasPrefix(Dash("x"), "x") {
		t.Error("Join/Dash")
	}
}

func TestWriteYAML(t *testing.T) {
	type inner struct {
		Addr  string   `json:"addr"`
		Slots []uint32 `json:"slots"`
	}
	v := struct {
		Zeta    string            `json:"zeta"`
		Alpha   int               `json:"alpha"`
		Words   []string          `json:"words"`
		Empty   []string          `json:"empty"`
		Nothing *inner            `json:"nothing"`
		Nodes   []inner           `json:"nodes"`
		Labels  map[string]string `json:"labels"`
		Skipped string            `json:"-"`
	}{
		Zeta:  "z",
		Alpha: 1,
		// Strings YAML would otherwise read as booleans, numbers or null.
		Words:  []string{"yes", "no", "1.5", "null", "", "a: b", "plain"},
		Empty:  []string{},
		Nodes:  []inner{{Addr: "127.0.0.1:9231", Slots: []uint32{0, 1}}},
		Labels: map[string]string{"b": "2", "a": "1"},
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, v); err != nil {
		t.Fatal(err)
	}
	// Field order is the struct's (JSON's), map keys are sorted as
	// encoding/json sorts them.
	want := `zeta: z
alpha: 1
words:
  - "yes"
  - "no"
  - "1.5"
  - "null"
  - ""
  - 'a: b'
  - plain
empty: []
nothing: null
nodes:
  - addr: 127.0.0.1:9231
    slots:
      - 0
      - 1
labels:
  a: "1"
  b: "2"
`
	if buf.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {4512, "4,512"}, {100000, "100,000"}, {1234567, "1,234,567"}} {
		if got := Count(tt.n); got != tt.want {
			t.Errorf("Count(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
