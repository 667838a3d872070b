package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// WriteYAML writes v as YAML. v goes through encoding/json first, so that
// the field names, their order, omitted fields and custom marshalers are
// exactly those of the JSON output: a script may switch formats without
// renaming anything. JSON is YAML, so yaml.v3 parses the JSON document
// into a node tree (keeping key order) that is then written in block
// style.
func WriteYAML(w io.Writer, v any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("output: yaml: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return fmt.Errorf("output: yaml: %w", err)
	}
	plain(&root)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return fmt.Errorf("output: yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("output: yaml: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// plain drops the JSON styles (flow collections, double-quoted strings)
// the parser recorded; the encoder then quotes only what needs it in YAML
// 1.2. Strings that YAML 1.1 parsers (still common in scripts) read as
// booleans stay quoted.
func plain(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && yaml11Bool[strings.ToLower(n.Value)] {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		plain(c)
	}
}

var yaml11Bool = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true, "on": true, "off": true,
}
