package cmd

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/zpbench/noop"
)

func (a *app) noopCommand() *cobra.Command {
	var (
		addr      string
		valueSize int
	)
	cmd := &cobra.Command{
		Use:   "noop-server --addr HOST:PORT",
		Short: "Serve the Zeppelin protocol and answer every request OK at once",
		Long: `noop-server listens on --addr and answers every request OK without doing
anything (reads get a --value-size value). Benchmark it with --noop to see
the ceiling of the framing, the loopback network and the load generator on
this machine. It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if valueSize < 0 {
				return usagef("--value-size must not be negative")
			}
			return wrap(func(cmd *cobra.Command, _ []string) error { return a.serveNoop(cmd.Context(), addr, valueSize) })(cmd, args)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7390", "address to listen on")
	cmd.Flags().IntVarP(&valueSize, "value-size", "d", 100, "size of the value reads return")
	return cmd
}

func (a *app) serveNoop(ctx context.Context, addr string, valueSize int) error {
	srv, err := noop.NewServer(valueSize, a.log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("noop-server: %w", err)
	}
	a.log.Info("noop-server listening", "addr", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil {
		return fmt.Errorf("noop-server: %w", err)
	}
	return nil
}
