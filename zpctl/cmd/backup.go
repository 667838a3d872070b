package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/tlsconf"
	"github.com/zeppelin-kv/zeppelin/zpctl/backup"
	"github.com/zeppelin-kv/zeppelin/zpctl/bytesize"
	"github.com/zeppelin-kv/zeppelin/zpctl/output"
	"github.com/zeppelin-kv/zeppelin/zpctl/progress"
)

// clusterSecretEnv names the file of the cluster secret when
// --cluster-secret-file is not given.
const clusterSecretEnv = "ZP_CLUSTER_SECRET_FILE"

func (a *app) backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up tables; list, verify and restore backups",
		Long: `Back up a table into a directory (a local or network file system), list the
backups of a directory, verify one, and restore one into a new table.
docs/backup.md says what each guarantees.`,
		RunE: groupRunE,
	}
	cmd.AddCommand(a.backupCreateCommand(), a.backupListCommand(), a.backupVerifyCommand(), a.backupRestoreCommand())
	return cmd
}

// backupCreateJSON is `backup create --output json`.
type backupCreateJSON struct {
	Name            string   `json:"name"`
	Path            string   `json:"path"`
	Table           string   `json:"table"`
	Partitions      int      `json:"partitions"`
	Epoch           uint64   `json:"epoch"`
	IncrementalFrom string   `json:"incremental_from"`
	Bytes           uint64   `json:"bytes"`
	BytesCopied     uint64   `json:"bytes_copied"`
	BytesReused     uint64   `json:"bytes_reused"`
	Seconds         float64  `json:"seconds"`
	BytesPerSec     float64  `json:"bytes_per_sec"`
	Positions       []string `json:"positions"`
}

func (a *app) backupCreateCommand() *cobra.Command {
	var (
		to, name, incFrom, rateFlag, secretFile string
		parallel                                int
	)
	cmd := &cobra.Command{
		Use:   "create TABLE --to DIR",
		Short: "Back up a table: a checkpoint of every partition, and a manifest",
		Long: `Back up TABLE into DIR/NAME (NAME defaults to TABLE-<UTC time>): for every
partition, a RocksDB checkpoint of one replica, an in-sync slave when there
is one (to spare the master; refused when it lacks a write its master had
applied when the partition's copy began), at a recorded (term, lsn), fetched with the
full-sync protocol; then DIR/NAME/backup.json, the manifest (table
settings, every file's size and CRC32C, every partition's position and
source, times, epoch, zpctl version), written last and atomically. A
backup without the manifest is incomplete: running the same command with
the same --name resumes it.

A partition whose replica fails or stops holding it during the backup is
fetched again from another replica. With --incremental-from, table files
the earlier backup (a name in DIR) already has are hard-linked from it
instead of fetched: only new files cross the network.

Full-sync requests are for the cluster's own servers: on a cluster with a
secret, give it with --cluster-secret-file (env ZP_CLUSTER_SECRET_FILE),
the file the nodes read (docs/security.md). --rate limits the bytes per
second fetched (e.g. 50M), all partitions together. The backup has no
deadline (Ctrl-C stops it, exit 8); progress goes to stderr.

Exit codes: 3 the table does not exist, 4 a partition could not be
fetched from any replica, 6 a complete backup of that name exists, 12 the
nodes want the cluster secret.`,
		Example: `  zpctl backup create orders --to /backups --cluster-secret-file /etc/zeppelin/cluster.secret
  zpctl backup create orders --to /backups --incremental-from orders-20261205T230000Z --rate 50M`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTableArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("--to DIR is required")
			}
			limit, err := parseRate(rateFlag)
			if err != nil {
				return err
			}
			if name == "" {
				name = fmt.Sprintf("%s-%s", args[0], time.Now().UTC().Format("20060102T150405Z"))
			}
			if parallel < 1 {
				return usagef("--parallel must be at least 1")
			}
			token, err := a.clusterSecret(secretFile)
			if err != nil {
				return err
			}
			dial, err := a.peerDialer(token)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.newClientFor(ctx, args[0])
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			target := backup.Dir(to)
			prog := a.newProgress("backup", "partitions", 0)
			bp := &backup.Progress{}
			stop := watchBackup(bp, prog)
			t0 := time.Now()
			m, err := backup.Create(ctx, backup.Options{
				Cluster: c, Dial: dial, Table: args[0], Target: target, Name: name,
				IncrementalFrom: incFrom, Rate: limit, Parallel: parallel,
				Progress: bp, Log: prog.Log,
			})
			stop()
			if err != nil {
				prog.Done(errors.New(briefError(err)))
				return &cmdFailed{err}
			}
			prog.Done(nil)
			took := time.Since(t0)
			out := backupCreateJSON{Name: m.Name, Path: to + "/" + m.Name, Table: m.Table.Name, Partitions: len(m.Partitions),
				Epoch: m.Epoch, IncrementalFrom: m.IncrementalFrom, Bytes: m.Bytes, BytesCopied: m.BytesCopied,
				BytesReused: m.BytesReused, Seconds: took.Seconds(), Positions: []string{}}
			if s := took.Seconds(); s > 0 {
				out.BytesPerSec = float64(m.BytesCopied) / s
			}
			for _, p := range m.Partitions {
				out.Positions = append(out.Positions, fmt.Sprintf("%d:%d/%d", p.ID, p.Term, p.LSN))
			}
			return a.printer.Line(out, fmt.Sprintf("backup %s of %s: %d partitions, %s (%s copied at %s/s, %s linked) in %v",
				out.Path, m.Table.Name, len(m.Partitions), bytesize.Format(m.Bytes), bytesize.Format(m.BytesCopied),
				bytesize.Format(uint64(out.BytesPerSec)), bytesize.Format(m.BytesReused), took.Round(time.Millisecond)))
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "directory of backups (created if needed)")
	f.StringVar(&name, "name", "", "name of the backup in DIR (default TABLE-<UTC time>)")
	f.StringVar(&incFrom, "incremental-from", "", "a complete backup in DIR whose table files are linked, not fetched again")
	f.StringVar(&rateFlag, "rate", "", "most bytes per second fetched, e.g. 50M (default unlimited)")
	f.IntVar(&parallel, "parallel", backup.DefaultParallel, "partitions fetched at once")
	f.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret, for clusters that have one (env "+clusterSecretEnv+")")
	return cmd
}

// watchBackup shows bp on prog until the returned stop is called:
// partitions done as the count, bytes, rate and ETA as the detail.
func watchBackup(bp *backup.Progress, prog progress.Reporter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		t0 := time.Now()
		shown := 0
		update := func() {
			s := bp.Snapshot()
			if s.Partitions > 0 {
				prog.SetTotal(int64(s.Partitions))
			}
			prog.SetDetail(backupDetail(s, time.Since(t0)))
			if s.PartitionsDone > shown {
				prog.Add(int64(s.PartitionsDone - shown))
				shown = s.PartitionsDone
			}
		}
		for {
			update()
			select {
			case <-done:
				update() // the last partitions, for Done's line
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// backupDetail is "12.0 MiB/40.0 MiB, 3.1 MiB/s, ETA 9s".
func backupDetail(s backup.ProgressSnapshot, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s", bytesize.Format(s.BytesDone), bytesize.Format(s.BytesTotal))
	if sec := took.Seconds(); sec > 0 && s.BytesCopied > 0 {
		rate := float64(s.BytesCopied) / sec
		fmt.Fprintf(&b, ", %s/s", bytesize.Format(uint64(rate)))
		if s.BytesTotal > s.BytesDone {
			eta := time.Duration(float64(s.BytesTotal-s.BytesDone) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %v", eta.Round(time.Second))
		}
	}
	return b.String()
}

// clusterSecret reads the cluster secret of file, or of
// $ZP_CLUSTER_SECRET_FILE; nil when neither is set.
func (a *app) clusterSecret(file string) ([]byte, error) {
	source := "--cluster-secret-file"
	if file == "" {
		file, source = a.env.Getenv(clusterSecretEnv), clusterSecretEnv
	}
	return a.readSecret("cluster-secret-file", file, source)
}

// serverTLS is the TLS zpctl serves a backup to the nodes with (restore):
// nil on a plain cluster; its client certificate as the server's, and the
// nodes' certificates required, when zpctl speaks TLS to the cluster.
func (a *app) serverTLS() (*tls.Config, error) {
	tlsCfg, err := a.clientTLS()
	if err != nil || tlsCfg == nil {
		return nil, err
	}
	f := tlsconf.Files{CA: a.settings.TLSCA.Value, Cert: a.settings.TLSCert.Value, Key: a.settings.TLSKey.Value}
	if f.Cert == "" {
		return nil, usagef("restore over TLS: zpctl serves the backup to the masters over TLS and needs a certificate for it: --tls-cert and --tls-key")
	}
	f.VerifyClients = f.CA != ""
	r, err := tlsconf.NewReloader(f, nil)
	if err != nil {
		return nil, usagef("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	return r.ServerConfig(), nil
}

// peerDialer returns how zpctl connects to nodes for full-sync and
// restore requests: over TLS when zpctl is set up for it, carrying token,
// the cluster secret (clusterSecret), when there is one.
func (a *app) peerDialer(token []byte) (backup.Dialer, error) {
	tlsCfg, err := a.clientTLS()
	if err != nil {
		return nil, err
	}
	timeout := a.timeout
	return func(ctx context.Context, addr string) (backup.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c, err := rpc.DialTLS(dctx, addr, 0, tlsCfg)
		if err != nil {
			return nil, err
		}
		c.SetClusterToken(token)
		return c, nil
	}, nil
}

// backupListJSON is one row of `backup list --output json`.
type backupListJSON struct {
	Name            string    `json:"name"`
	Complete        bool      `json:"complete"`
	Error           string    `json:"error"`
	Table           string    `json:"table"`
	Partitions      int       `json:"partitions"`
	Bytes           uint64    `json:"bytes"`
	IncrementalFrom string    `json:"incremental_from"`
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	Epoch           uint64    `json:"epoch"`
	ToolVersion     string    `json:"tool_version"`
}

func (a *app) backupListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list DIR",
		Short: "List the backups in a directory, complete or not",
		Long: `List the backups in DIR: name, table, partitions, size, when, and whether
the backup is complete (has its manifest). An incomplete backup failed or
is still being written; its files are kept for 'backup create --name' to
resume. 'list' reads manifests only: 'backup verify' reads every file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := backup.List(cmd.Context(), backup.Dir(args[0]))
			if err != nil {
				return &cmdFailed{err}
			}
			rows := make([]backupListJSON, 0, len(entries))
			for _, e := range entries {
				r := backupListJSON{Name: e.Name, Complete: e.Manifest != nil}
				if e.Err != nil {
					r.Error = e.Err.Error()
				}
				if m := e.Manifest; m != nil {
					r.Table, r.Partitions, r.Bytes, r.IncrementalFrom = m.Table.Name, len(m.Partitions), m.Bytes, m.IncrementalFrom
					r.StartedAt, r.FinishedAt, r.Epoch, r.ToolVersion = m.StartedAt, m.FinishedAt, m.Epoch, m.ToolVersion
				}
				rows = append(rows, r)
			}
			return a.printer.Print(rows, func(w io.Writer) error {
				if len(rows) == 0 {
					_, err := fmt.Fprintf(w, "no backups in %s\n", args[0])
					return err
				}
				t := output.Table{Header: []string{"NAME", "TABLE", "PARTITIONS", "SIZE", "FINISHED", "INCREMENTAL FROM", "STATE"}}
				for _, r := range rows {
					if !r.Complete {
						t.Rows = append(t.Rows, []string{output.Cell([]byte(r.Name)), "-", "-", "-", "-", "-", "incomplete"})
						continue
					}
					t.Rows = append(t.Rows, []string{output.Cell([]byte(r.Name)), output.Cell([]byte(r.Table)), fmt.Sprint(r.Partitions), bytesize.Format(r.Bytes),
						r.FinishedAt.Format(time.RFC3339), output.Dash(r.IncrementalFrom), "complete"})
				}
				return output.WriteTable(w, t)
			})
		},
	}
}

// backupVerifyJSON is `backup verify --output json`.
type backupVerifyJSON struct {
	Backup   string           `json:"backup"`
	OK       bool             `json:"ok"`
	Table    string           `json:"table"`
	Files    int              `json:"files"`
	Bytes    uint64           `json:"bytes"`
	Problems []backup.Problem `json:"problems"`
}

func (a *app) backupVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR/BACKUP",
		Short: "Check every file of a backup against its manifest",
		Long: `Read every file of the backup and check its size and CRC32C against the
manifest, and that every partition of the table is there. Exit 0 when all
is well; 13 when the backup is damaged (a file missing, of another size or
checksum, a partition missing) or incomplete (no manifest), with the
problems listed; 3 when there is no such backup.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, name := backup.SplitPath(args[0])
			rep, err := backup.Verify(cmd.Context(), dir, name)
			if rep == nil {
				return &cmdFailed{err}
			}
			out := backupVerifyJSON{Backup: args[0], OK: err == nil, Table: rep.Manifest.Table.Name, Files: rep.Files,
				Bytes: rep.Bytes, Problems: rep.Problems}
			if perr := a.printer.Print(out, func(w io.Writer) error {
				for _, p := range rep.Problems {
					fmt.Fprintf(w, "problem: %s\n", p)
				}
				if err == nil {
					_, werr := fmt.Fprintf(w, "backup %s of %s: %d files, %s, all checksums match, all %d partitions present\n",
						args[0], rep.Manifest.Table.Name, rep.Files, bytesize.Format(rep.Bytes), rep.Manifest.Table.PartitionCount)
					return werr
				}
				return nil
			}); perr != nil {
				return perr
			}
			if err != nil {
				return &cmdFailed{err}
			}
			return nil
		},
	}
}

// backupRestoreJSON is `backup restore --output json`.
type backupRestoreJSON struct {
	Backup       string            `json:"backup"`
	Table        string            `json:"table"`
	Partitions   int               `json:"partitions"`
	Bytes        uint64            `json:"bytes"`
	BytesFetched uint64            `json:"bytes_fetched"`
	Seconds      float64           `json:"seconds"`
	BytesPerSec  float64           `json:"bytes_per_sec"`
	Positions    []backup.Position `json:"positions"`
}

func (a *app) backupRestoreCommand() *cobra.Command {
	var (
		table, rateFlag, secretFile, listen string
		replicas                            uint32
		parallel                            int
	)
	cmd := &cobra.Command{
		Use:   "restore DIR/BACKUP --table NAME",
		Short: "Restore a backup into a new table",
		Long: `Restore DIR/BACKUP into a new table NAME with the backup's partition count
(and replicas, unless --replicas), on this or any other cluster:

  1. verify the backup (every checksum, as 'backup verify');
  2. create NAME restoring: nodes answer every read and write of it WAIT
     (clients retry until their timeout) until the restore finishes;
  3. serve the backup from zpctl (on --listen, default the address zpctl
     reaches the masters from, on a free port: every master must be able to
     connect to it) and have each partition's master fetch its checkpoint
     with the full-sync protocol, install it through the full-sync install
     and restart its binlog at the backup's lsn; its slaves then full-sync
     from it;
  4. when every partition is in, finish the restore: the table is readable
     and writable.

If it fails, NAME stays closed: drop it ('zpctl table drop') and restore
again. Nodes older than this zpctl serve a restoring table at once. Needs the admin token (creating the table) and, on a cluster with a
secret, the cluster secret (--cluster-secret-file, env
ZP_CLUSTER_SECRET_FILE). The restore has no deadline (Ctrl-C stops it).

On a cluster over TLS (zpctl given --tls-ca), the masters fetch the backup
over TLS too: zpctl serves it with its --tls-cert and --tls-key, which
must be signed by the CA the nodes trust and name the address they reach
it at (--listen), and with --tls-ca it requires the nodes' certificates.

Exit codes: 2 TLS without a certificate to serve with, 3 no such backup, 6 the table exists, 12 the admin
token or cluster secret is wanted, 13 the backup is damaged or incomplete.`,
		Example: "  zpctl backup restore /backups/orders-20261205T230000Z --table orders_restored --cluster-secret-file /etc/zeppelin/cluster.secret",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if table == "" {
				return usagef("--table NAME is required")
			}
			limit, err := parseRate(rateFlag)
			if err != nil {
				return err
			}
			if parallel < 1 {
				return usagef("--parallel must be at least 1")
			}
			serveTLS, err := a.serverTLS()
			if err != nil {
				return err
			}
			clusterSecret, err := a.clusterSecret(secretFile)
			if err != nil {
				return err
			}
			dial, err := a.peerDialer(clusterSecret)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := a.newClient(ctx)
			if err != nil {
				return &cmdFailed{err}
			}
			defer c.Close()
			dir, name := backup.SplitPath(args[0])
			prog := a.newProgress("restore", "partitions", 0)
			bp := &backup.Progress{}
			stop := watchBackup(bp, prog)
			t0 := time.Now()
			res, err := backup.Restore(ctx, backup.RestoreOptions{
				Cluster: c, Dial: dial, Target: dir, Name: name, Table: table, Replicas: replicas,
				ClusterSecret: clusterSecret, Listen: listen, ServeTLS: serveTLS, Rate: limit, Parallel: parallel,
				Progress: bp, Log: prog.Log,
			})
			stop()
			if err != nil {
				prog.Done(errors.New(briefError(err)))
				return &cmdFailed{err}
			}
			prog.Done(nil)
			took := time.Since(t0)
			out := backupRestoreJSON{Backup: args[0], Table: table, Partitions: len(res.Positions), Bytes: res.Manifest.Bytes,
				BytesFetched: res.BytesFetched, Seconds: took.Seconds(), Positions: res.Positions}
			if s := took.Seconds(); s > 0 {
				out.BytesPerSec = float64(res.BytesFetched) / s
			}
			return a.printer.Line(out, fmt.Sprintf("restored %s into %s: %d partitions, %s at %s/s in %v",
				args[0], table, out.Partitions, bytesize.Format(res.BytesFetched), bytesize.Format(uint64(out.BytesPerSec)),
				took.Round(time.Millisecond)))
		},
	}
	f := cmd.Flags()
	f.StringVar(&table, "table", "", "the new table to restore into (must not exist)")
	f.Uint32Var(&replicas, "replicas", 0, "replicas of the new table (default the backup's)")
	f.StringVar(&rateFlag, "rate", "", "most bytes per second served to the masters, e.g. 50M (default unlimited)")
	f.IntVar(&parallel, "parallel", backup.DefaultParallel, "partitions restored at once")
	f.StringVar(&listen, "listen", "", "host:port to serve the backup on, which every master must reach (default: the address zpctl reaches them from, a free port)")
	f.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret, for clusters that have one (env "+clusterSecretEnv+")")
	return cmd
}

// parseRate reads a --rate flag: bytes a second, 0 (no limit) when empty.
func parseRate(flag string) (uint64, error) {
	if flag == "" {
		return 0, nil
	}
	n, err := bytesize.Parse(flag)
	if err != nil {
		return 0, usagef("--rate: %w", err)
	}
	return n, nil
}
