package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/buildinfo"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print zpctl's version (node list and meta list show the servers')",
		Long: `Print the version zpctl was built from, as every Zeppelin-Go binary's
--version prints it: "zpctl VERSION (GO-RELEASE OS/ARCH)". It asks no server:
'zpctl node list' and 'zpctl meta list' show the version each server runs,
and 'zpctl checkup' warns when they differ.

The version is what the build stamped (the Makefile's ZP_VERSION, by default
'git describe --tags --always --dirty'); a binary built with plain 'go build'
reports the module version or VCS revision Go recorded, else "devel".
--output json gives {"version", "go", "platform"}.`,
		Example: "  zpctl version\n  zpctl version -o json | jq -r .version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.printer.Print(buildinfo.Get(), func(w io.Writer) error {
				_, err := fmt.Fprintln(w, buildinfo.Line("zpctl"))
				return err
			})
		},
	}
}
