package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// configRun runs `zpctl -o json config` with args, env and, when file is
// not empty, a config file at ~/.config/zpctl/config.yaml, and returns the
// settings it reports.
func configRun(t *testing.T, args []string, env map[string]string, file string) (settings, result) {
	t.Helper()
	home := t.TempDir()
	if file != "" {
		dir := filepath.Join(home, ".config", "zpctl")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := map[string]string{"HOME": home}
	for k, v := range env {
		e[k] = strings.ReplaceAll(v, "$HOME", home)
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "$HOME", home)
	}
	r := run(t, invocation{args: append(args, "config"), env: e})
	var s settings
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
	}
	return s, r
}

func TestConfigPrecedence(t *testing.T) {
	const file = "meta: file:1,file:2\noutput: json\ntimeout: 9s\n"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		file     string
		wantMeta string
		wantFrom string // of meta
		wantTO   string
		toFrom   string
	}{
		{"default", []string{"-o", "json"}, nil, "", DefaultMeta, "default", "5s", "default"},
		{"file", []string{"-o", "json"}, nil, file, "file:1,file:2", "config $HOME/.config/zpctl/config.yaml", "9s", "config $HOME/.config/zpctl/config.yaml"},
		{"env over file", []string{"-o", "json"}, map[string]string{"ZP_META": "env:1", "ZP_TIMEOUT": "7s"}, file, "env:1", "env ZP_META", "7s", "env ZP_TIMEOUT"},
		{"flag over env", []string{"-o", "json", "--meta", "flag:1", "--timeout", "3s"}, map[string]string{"ZP_META": "env:1", "ZP_TIMEOUT": "7s"}, file, "flag:1", "flag --meta", "3s", "flag --timeout"},
		{"list in file", []string{"-o", "json"}, nil, "meta:\n  - a:1\n  - b:2\n", "a:1,b:2", "config $HOME/.config/zpctl/config.yaml", "5s", "default"},
		{"XDG_CONFIG_HOME", []string{"-o", "json"}, map[string]string{"XDG_CONFIG_HOME": "$HOME/.config"}, file, "file:1,file:2", "config $HOME/.config/zpctl/config.yaml", "9s", "config $HOME/.config/zpctl/config.yaml"},
		{"--config", []string{"-o", "json", "--config", "$HOME/.config/zpctl/config.yaml"}, map[string]string{"HOME": "/nonexistent"}, file, "file:1,file:2", "config $HOME/.config/zpctl/config.yaml", "9s", "config $HOME/.config/zpctl/config.yaml"},
		{"ZP_CONFIG", []string{"-o", "json"}, map[string]string{"ZP_CONFIG": "$HOME/.config/zpctl/config.yaml", "HOME": "/nonexistent"}, file, "file:1,file:2", "config $HOME/.config/zpctl/config.yaml", "9s", "config $HOME/.config/zpctl/config.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := configRun(t, tt.args, tt.env, tt.file)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			// The temporary HOME differs per run: compare with it cut out.
			from := s.Meta.Source
			if i := strings.Index(from, "/.config"); i >= 0 && strings.HasPrefix(from, "config ") {
				from = "config $HOME" + from[i:]
			}
			toFrom := s.Timeout.Source
			if i := strings.Index(toFrom, "/.config"); i >= 0 && strings.HasPrefix(toFrom, "config ") {
				toFrom = "config $HOME" + toFrom[i:]
			}
			if s.Meta.Value != tt.wantMeta || from != tt.wantFrom || s.Timeout.Value != tt.wantTO || toFrom != tt.toFrom {
				t.Fatalf("got %+v", s)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		file       string
		wantStderr string
	}{
		{"unknown key", nil, nil, "metas: a:1\n", "field metas not found"},
		{"bad yaml", nil, nil, "meta: [a\n", "config"},
		{"bad timeout in file", nil, nil, "timeout: soon\n", "--timeout (config"},
		{"bad output in env", nil, map[string]string{"ZP_OUTPUT": "xml"}, "", "--output (env ZP_OUTPUT)"},
		{"missing --config", []string{"--config", "$HOME/nope.yaml"}, nil, "", "nope.yaml"},
		{"empty meta", []string{"--meta", " , "}, nil, "", "names no meta server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := configRun(t, tt.args, tt.env, tt.file)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, tt.wantStderr)
			}
		})
	}
	// The output format of the file applies to everything, errors too.
	_, r := configRun(t, nil, nil, "output: json\nmeta: 127.0.0.1:1\ntimeout: 200ms\n")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "{") {
		t.Fatalf("config with output json from file: %d %q", r.code, r.stdout)
	}
}
