// Command zpbench is Zeppelin-Go's load generator: YCSB-style workloads
// against a Zeppelin cluster, Redis or a no-op server, with HDR latency
// histograms; `zpbench suite` is what `make bench` runs. See
// `zpbench --help` and zpbench/cmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/zeppelin-kv/zeppelin/zpbench/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, cmd.OSEnv())
	stop()
	os.Exit(code)
}
