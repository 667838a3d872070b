package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

// Global settings come from, in order of precedence: the command-line
// flag, the environment, the config file, the built-in default. The
// config file is --config, else $ZP_CONFIG, else
// $XDG_CONFIG_HOME/zpctl/config.yaml (~/.config/zpctl/config.yaml). A
// config file named explicitly must exist; the default one may not.
//
//	# ~/.config/zpctl/config.yaml
//	meta: 10.0.0.1:9221,10.0.0.2:9221,10.0.0.3:9221   # or a YAML list
//	output: table                                      # table, json or yaml
//	timeout: 10s
//	admin_token_file: ~/.config/zpctl/admin-token        # chmod 600
//	tls_ca: /etc/zeppelin/ca.pem                         # TLS: the cluster's CA
//	tls_cert: ~/.config/zpctl/client.pem                 # mTLS: a client certificate
//	tls_key: ~/.config/zpctl/client-key.pem
//	table_password_file: ~/.config/zpctl/users-password  # chmod 600
const (
	envMeta          = "ZP_META"
	envOutput        = "ZP_OUTPUT"
	envTimeout       = "ZP_TIMEOUT"
	envConfig        = "ZP_CONFIG"
	envAdminToken    = "ZP_ADMIN_TOKEN_FILE"
	envTLSCA         = "ZP_TLS_CA"
	envTLSCert       = "ZP_TLS_CERT"
	envTLSKey        = "ZP_TLS_KEY"
	envTablePassword = "ZP_TABLE_PASSWORD_FILE"
)

// Built-in defaults.
const (
	// DefaultMeta is the local cluster `make run` starts.
	DefaultMeta    = "127.0.0.1:9221,127.0.0.1:9222,127.0.0.1:9223"
	defaultOutput  = "table"
	defaultTimeout = 5 * time.Second
)

// configFile is the config file's schema. Unknown keys are an error, so
// that a typo does not silently fall back to a default.
type configFile struct {
	Meta    metaList `yaml:"meta"`
	Output  string   `yaml:"output"`
	Timeout string   `yaml:"timeout"`
	// AdminTokenFile names the file holding the meta servers' admin
	// token: the token itself is never a setting, so that it is neither
	// on a command line nor in a file meant to be shared.
	AdminTokenFile string `yaml:"admin_token_file"`
	// TLSCA, TLSCert and TLSKey are PEM files: the CA the servers'
	// certificates chain to (TLS on), and a client certificate for
	// servers that verify clients.
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TablePasswordFile names the file holding the password of the table
	// a data command names, likewise never a setting itself.
	TablePasswordFile string `yaml:"table_password_file"`
}

// metaList accepts "a,b" or a YAML list of addresses.
type metaList string

func (m *metaList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*m = metaList(n.Value)
		return nil
	case yaml.SequenceNode:
		var addrs []string
		if err := n.Decode(&addrs); err != nil {
			return err
		}
		*m = metaList(strings.Join(addrs, ","))
		return nil
	}
	return fmt.Errorf("line %d: meta must be a string or a list of addresses", n.Line)
}

// setting is one resolved global setting and where it came from.
type setting struct {
	Value  string `json:"value"`
	Source string `json:"source"` // "flag", "env ZP_META", "config <path>", "default"
}

// settings are the resolved global settings.
type settings struct {
	Meta    setting `json:"meta"`
	Output  setting `json:"output"`
	Timeout setting `json:"timeout"`
	// AdminTokenFile is the file of the admin token, "" for none.
	AdminTokenFile setting `json:"admin_token_file"`
	// TLSCA, TLSCert and TLSKey are the TLS files, "" for none (plain
	// TCP without a CA).
	TLSCA   setting `json:"tls_ca"`
	TLSCert setting `json:"tls_cert"`
	TLSKey  setting `json:"tls_key"`
	// TablePasswordFile is the file of the password data commands
	// present for the table they name, "" for none.
	TablePasswordFile setting `json:"table_password_file"`
	// Config is the config file read, "" when none.
	Config string `json:"config"`
}

// configPath returns the config file to read and whether it was named
// explicitly.
func (a *app) configPath(cmd *cobra.Command) (string, bool) {
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed {
		return a.configFlag, true
	}
	if p := a.env.Getenv(envConfig); p != "" {
		return p, true
	}
	if dir := a.env.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "zpctl", "config.yaml"), false
	}
	if home := a.env.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "zpctl", "config.yaml"), false
	}
	return "", false
}

// readConfig reads the config file; a missing default file is no error.
func (a *app) readConfig(cmd *cobra.Command) (configFile, string, error) {
	var cf configFile
	path, explicit := a.configPath(cmd)
	if path == "" {
		return cf, "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return cf, "", nil
	}
	if err != nil {
		return cf, "", usagef("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil && !errors.Is(err, io.EOF) {
		return cf, "", usagef("config %s: %w", path, err)
	}
	return cf, path, nil
}

// resolve applies the precedence to the global settings and checks them.
// It fills a.settings, a.meta, a.timeout and a.format.
func (a *app) resolve(cmd *cobra.Command) error {
	cf, path, err := a.readConfig(cmd)
	if err != nil {
		return err
	}
	pick := func(flag string, flagValue string, env string, file string, def string) setting {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			return setting{flagValue, "flag --" + flag}
		}
		if v := a.env.Getenv(env); v != "" {
			return setting{v, "env " + env}
		}
		if file != "" {
			return setting{file, "config " + path}
		}
		return setting{def, "default"}
	}
	s := settings{
		Meta:           pick("meta", a.metaFlag, envMeta, string(cf.Meta), DefaultMeta),
		Output:         pick("output", a.outputFlag, envOutput, cf.Output, defaultOutput),
		Timeout:        pick("timeout", a.timeoutFlag.String(), envTimeout, cf.Timeout, defaultTimeout.String()),
		AdminTokenFile: pick("admin-token-file", a.adminTokenFlag, envAdminToken, expandHome(cf.AdminTokenFile, a.env.Getenv("HOME")), ""),
		TLSCA:          pick("tls-ca", a.tlsFlags.CA, envTLSCA, expandHome(cf.TLSCA, a.env.Getenv("HOME")), ""),
		TLSCert:        pick("tls-cert", a.tlsFlags.Cert, envTLSCert, expandHome(cf.TLSCert, a.env.Getenv("HOME")), ""),
		TLSKey:         pick("tls-key", a.tlsFlags.Key, envTLSKey, expandHome(cf.TLSKey, a.env.Getenv("HOME")), ""),
		TablePasswordFile: pick("table-password-file", a.tablePasswordFlag, envTablePassword,
			expandHome(cf.TablePasswordFile, a.env.Getenv("HOME")), ""),
		Config: path,
	}
	a.settings = s
	a.format = s.Output.Value
	if _, err := output.ParseFormat(s.Output.Value); err != nil {
		return usagef("--output (%s): %w", s.Output.Source, err)
	}
	d, err := time.ParseDuration(s.Timeout.Value)
	if err != nil {
		return usagef("--timeout (%s): %w", s.Timeout.Source, err)
	}
	if d <= 0 {
		return usagef("--timeout (%s) must be positive, not %v", s.Timeout.Source, d)
	}
	a.timeout = d
	a.meta = s.Meta.Value
	a.adminTokenFile = s.AdminTokenFile.Value
	a.tablePasswordFile = s.TablePasswordFile.Value
	if len(a.metaAddrs()) == 0 {
		return usagef("--meta (%s) names no meta server", s.Meta.Source)
	}
	return nil
}

// metaAddrs splits the resolved --meta.
func (a *app) metaAddrs() []string {
	var addrs []string
	for _, s := range strings.Split(a.meta, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	return addrs
}

// expandHome turns a leading "~/" into home, as a shell would have for a
// flag's value.
func expandHome(path, home string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok && home != "" {
		return filepath.Join(home, rest)
	}
	return path
}
