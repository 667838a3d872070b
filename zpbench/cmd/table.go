package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/zpbench/target"
)

// tableFlags say what becomes of a Zeppelin table at the end of a run.
type tableFlags struct {
	keepTable, dropTable bool
}

func (f *tableFlags) validate() error {
	if f.keepTable && f.dropTable {
		return usagef("--keep-table and --drop-table contradict each other")
	}
	return nil
}

// benchTable is a Zeppelin target's table: created when missing (and said
// so), and at the end of the run dropped when zpbench created it, unless
// --keep-table, or whenever --drop-table.
type benchTable struct {
	cl      *client.Client
	name    string
	created bool
}

// dropTimeout bounds dropping the table at the end, which runs even when
// the run was interrupted.
const dropTimeout = 30 * time.Second

// ensureTable makes sure the table of a Zeppelin target exists, creating
// it from the flags when missing, and reports on stderr that it did and
// what becomes of it (after is "dropped when the run ends (--keep-table
// keeps it)" or the like). It returns nil for other targets.
func (a *app) ensureTable(ctx context.Context, t *targetFlags, s targetSpec, after string) (*benchTable, error) {
	if s.kind != "zeppelin" {
		return nil, nil
	}
	ac, err := a.access(t)
	if err != nil {
		return nil, err
	}
	opts := client.Options{MetaAddrs: splitAddrs(s.addr), TLS: ac.tls, AdminToken: ac.adminToken, Logger: a.log}
	if ac.tablePassword != nil {
		opts.TablePasswords = map[string][]byte{t.table: ac.tablePassword}
	}
	cl, err := client.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("zeppelin target: %w", err)
	}
	spec, err := target.EnsureTable(ctx, cl, t.table, &client.TableSpec{Partitions: t.partitions, Replicas: t.replicas, MinSyncReplicas: t.minSync}, a.log)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("zeppelin target: %w", err)
	}
	bt := &benchTable{cl: cl, name: t.table, created: spec != nil}
	if bt.created {
		fmt.Fprintf(a.env.Stderr, "zpbench: created table %s (partitions %d, replicas %d, min_sync_replicas %d); %s\n",
			t.table, spec.Partitions, spec.Replicas, spec.MinSyncReplicas, after)
	}
	return bt, nil
}

// finish drops the table when f says so, reporting it on stderr, and
// closes the client. A table that cannot be dropped is reported, not
// failed on: the benchmark's result stands.
func (bt *benchTable) finish(a *app, f tableFlags) {
	defer bt.cl.Close()
	drop := f.dropTable || bt.created && !f.keepTable
	if !drop {
		if bt.created {
			fmt.Fprintf(a.env.Stderr, "zpbench: kept table %s (zpctl table drop %s removes it)\n", bt.name, bt.name)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	if _, err := bt.cl.DropTable(ctx, bt.name, 0); err != nil {
		fmt.Fprintf(a.env.Stderr, "zpbench: could not drop table %s: %v (zpctl table drop %s removes it)\n", bt.name, err, bt.name)
		return
	}
	why := "which zpbench created; --keep-table keeps it"
	if !bt.created {
		why = "--drop-table"
	}
	fmt.Fprintf(a.env.Stderr, "zpbench: dropped table %s (%s)\n", bt.name, why)
}
