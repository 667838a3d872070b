// Command zpctl operates a Zeppelin-Go cluster; see `zpctl --help`, and
// zpctl/cmd for the commands and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/zeppelin-kv/zeppelin/zpctl/cmd"
	"github.com/zeppelin-kv/zeppelin/zpctl/noquery"
)

func main() {
	noquery.Restore()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, cmd.OSEnv())
	stop()
	os.Exit(code)
}
