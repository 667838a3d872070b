package cmd

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/zpctl/output"
)

func (a *app) configCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Show the settings in effect (--meta, --output, --timeout) and where each came from",
		Long: `Show the global settings in effect and where each came from: a flag, the
environment (ZP_META, ZP_OUTPUT, ZP_TIMEOUT, ZP_ADMIN_TOKEN_FILE, ZP_TLS_CA,
ZP_TLS_CERT, ZP_TLS_KEY), the config
file (--config, ZP_CONFIG, or ~/.config/zpctl/config.yaml), or the default. A
config file looks like this:

  meta: 10.0.0.1:9221,10.0.0.2:9221,10.0.0.3:9221   # or a YAML list
  output: table                                      # table, json or yaml
  timeout: 10s
  admin_token_file: ~/.config/zpctl/admin-token      # chmod 600; never the token itself
  tls_ca: /etc/zeppelin/ca.pem                       # connect over TLS
  tls_cert: ~/.config/zpctl/client.pem               # for servers that verify clients
  tls_key: ~/.config/zpctl/client-key.pem`,
		Example: "  zpctl config\n  ZP_META=10.0.0.1:9221 zpctl config -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := a.settings
			return a.printer.Print(s, func(w io.Writer) error {
				t := output.Table{Header: []string{"SETTING", "VALUE", "FROM"}}
				t.Rows = append(t.Rows,
					[]string{"meta", s.Meta.Value, s.Meta.Source},
					[]string{"output", s.Output.Value, s.Output.Source},
					[]string{"timeout", s.Timeout.Value, s.Timeout.Source},
					[]string{"admin token file", output.Dash(s.AdminTokenFile.Value), s.AdminTokenFile.Source},
					[]string{"tls ca", output.Dash(s.TLSCA.Value), s.TLSCA.Source},
					[]string{"tls cert", output.Dash(s.TLSCert.Value), s.TLSCert.Source},
					[]string{"tls key", output.Dash(s.TLSKey.Value), s.TLSKey.Source},
					[]string{"password file", output.Dash(s.TablePasswordFile.Value), s.TablePasswordFile.Source},
					[]string{"config file", output.Dash(s.Config), ""},
				)
				return output.WriteTable(w, t)
			})
		},
	}
}
