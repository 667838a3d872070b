package backup

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/zeppelin-kv/zeppelin/lib/client"
	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/secret"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpnode/dbsync"
)

// RestoreCluster is what Restore asks of the cluster; *client.Client has
// it.
type RestoreCluster interface {
	Cluster
	CreateTable(ctx context.Context, spec client.TableSpec) (client.Table, error)
	FinishRestore(ctx context.Context, table string, createdEpoch uint64) (uint64, error)
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	Cluster RestoreCluster
	// Dial connects to nodes with the cluster secret.
	Dial Dialer
	// Target and Name are the backup.
	Target Target
	Name   string
	// Table is the table to create and restore into; it must not exist.
	Table string
	// Replicas of the new table; 0 keeps the backup's.
	Replicas uint32
	// ClusterSecret, when set, is what nodes must present to fetch the
	// backup from Restore's server.
	ClusterSecret []byte
	// Listen is the host:port Restore serves the backup on, which every
	// master must reach; default the address zpctl reaches the first
	// master from, on a free port.
	Listen string
	// ServeTLS, when set, is the TLS the backup is served over: the
	// masters of a cluster whose nodes speak TLS dial it as they dial
	// each other.
	ServeTLS *tls.Config
	// Rate limits the bytes served per second, all partitions together;
	// 0 is unlimited.
	Rate uint64
	// Parallel is how many partitions are restored at once; default
	// DefaultParallel.
	Parallel int
	// Progress, when set, counts the bytes served (Snapshot's BytesDone
	// and BytesCopied; BytesTotal is the backup's size).
	Progress *Progress
	Log      func(line string)
	Logger   *slog.Logger
}

// Restored is the outcome of a Restore.
type Restored struct {
	Manifest *Manifest
	// Positions are the partitions' positions after the install: the
	// backup's lsn, in the new master's term.
	Positions []Position
	// BytesFetched is what the masters fetched from the backup.
	BytesFetched uint64
}

// Position is one restored partition.
type Position struct {
	Partition uint32 `json:"partition"`
	Master    string `json:"master"`
	Term      uint64 `json:"term"`
	LSN       uint64 `json:"lsn"`
}

// Restore verifies the backup (every checksum), creates table opts.Table
// with the backup's partition count and settings, restoring
// (client.TableSpec.Restoring: nodes answer its data commands WAIT), then
// has the master of each partition install its partition's checkpoint:
// the master fetches it from a server Restore runs (the full-sync
// protocol, from the backup's files) and installs it through dbsync's
// install; its slaves then full-sync from it. Once every partition is in,
// it finishes the restore (FinishRestore): the table serves. On error the
// table is left restoring, for the operator to drop.
func Restore(ctx context.Context, opts RestoreOptions) (*Restored, error) {
	if opts.Cluster == nil || opts.Dial == nil || opts.Target == nil || opts.Name == "" || opts.Table == "" {
		return nil, errors.New("backup: RestoreOptions.Cluster, Dial, Target, Name and Table are required")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rep, err := Verify(ctx, opts.Target, opts.Name)
	if err != nil {
		return nil, err
	}
	m := rep.Manifest
	replicas := opts.Replicas
	if replicas == 0 {
		replicas = m.Table.Replicas
	}
	created, err := opts.Cluster.CreateTable(ctx, client.TableSpec{
		Name: opts.Table, Partitions: m.Table.PartitionCount, Replicas: replicas,
		MinSyncReplicas: min(m.Table.MinSyncReplicas, replicas-1),
		Quota:           client.Quota{OpsPerSec: m.Table.QuotaOpsPerSec, BytesPerSec: m.Table.QuotaBytesPerSec},
		SplitSize:       m.Table.SplitSize,
		Restoring:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("backup: restore: create table %s: %w", opts.Table, err)
	}
	opts.Log(fmt.Sprintf("table %s created, closed until every partition is in", opts.Table))
	topo, err := opts.Cluster.Pull(ctx, opts.Table)
	if err != nil {
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	tb := topo.Table(opts.Table)
	if tb == nil || len(tb.Partitions) == 0 {
		return nil, fmt.Errorf("backup: restore: %w", status.New(zppb.Code_TABLE_NOT_FOUND, "table %q not found after its creation", opts.Table))
	}

	srv, err := serveBackup(ctx, opts, m, tb.Partitions[0].Master)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	opts.Log(fmt.Sprintf("serving the backup on %s", srv.addr))

	opts.Progress.begin(len(m.Partitions))
	// The bytes served, for the caller's progress.
	dp := &servedProgress{total: m.Bytes, served: &srv.served}
	opts.Progress.attemptBytes(dp)

	out := &Restored{Manifest: m, Positions: make([]Position, len(m.Partitions))}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, opts.Parallel)
	for i, p := range m.Partitions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pos, fetched, err := restorePartition(ctx, opts, p.ID, srv.addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out.Positions[i] = pos
			out.BytesFetched += fetched
			opts.Progress.partitionDone()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("backup: restore into %s (left closed: drop it and restore again): %w", opts.Table, firstErr)
	}
	if _, err := opts.Cluster.FinishRestore(ctx, opts.Table, created.CreatedEpoch); err != nil {
		return nil, fmt.Errorf("backup: restore: every partition is in, but opening %s failed (drop it and restore again): %w", opts.Table, err)
	}
	opts.Log(fmt.Sprintf("every partition is in; table %s serves", opts.Table))
	return out, nil
}

// restoreAttempts bounds the tries of one partition whose master moves or
// is not ready.
const restoreAttempts = 10

// restorePartition has the master of partition id install it from
// source, again when the master changed under it.
func restorePartition(ctx context.Context, opts RestoreOptions, id uint32, source string) (Position, uint64, error) {
	var lastErr error
	for attempt := range restoreAttempts {
		if attempt > 0 {
			if err := sleep(ctx, DefaultRetryPause); err != nil {
				return Position{}, 0, err
			}
		}
		topo, err := opts.Cluster.Pull(ctx, opts.Table)
		if err != nil {
			lastErr = err
			continue
		}
		tb := topo.Table(opts.Table)
		if tb == nil || int(id) >= len(tb.Partitions) || tb.Partitions[id].Master == "" {
			lastErr = fmt.Errorf("partition %d has no master", id)
			continue
		}
		master := tb.Partitions[id].Master
		opts.Log(fmt.Sprintf("partition %d: installing on %s", id, master))
		resp, err := callRestore(ctx, opts, master, id, source)
		if err == nil {
			r := resp.GetRestorePartition()
			return Position{Partition: id, Master: master, Term: r.GetTerm(), LSN: r.GetLsn()}, r.GetBytesFetched(), nil
		}
		if ctx.Err() != nil {
			return Position{}, 0, ctx.Err()
		}
		lastErr = fmt.Errorf("partition %d on %s: %w", id, master, err)
		switch status.Code(err) {
		case zppb.Code_MOVE, zppb.Code_WAIT, zppb.Code_UNAVAILABLE, zppb.Code_TABLE_NOT_FOUND:
			// The master changed, is opening the replica, or has not
			// heard of the new table yet.
			opts.Log(fmt.Sprintf("partition %d: %s; trying again", id, briefErr(err)))
			continue
		}
		if rpc.IsTransport(err) {
			opts.Log(fmt.Sprintf("partition %d: %s; trying again", id, briefErr(err)))
			continue
		}
		return Position{}, 0, lastErr
	}
	return Position{}, 0, lastErr
}

func callRestore(ctx context.Context, opts RestoreOptions, master string, id uint32, source string) (*zppb.Response, error) {
	conn, err := opts.Dial(ctx, master)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := conn.Call(ctx, &zppb.Request{Cmd: &zppb.Request_RestorePartition{RestorePartition: &zppb.RestorePartitionRequest{
		Table: opts.Table, Partition: id, Source: source,
	}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	return resp, err
}

// backupServer serves a backup's partitions with the full-sync calls.
type backupServer struct {
	addr    string
	scratch string
	src     *dbsync.Source
	rpc     *rpc.Server
	served  atomic.Uint64
	done    chan struct{}
}

func (s *backupServer) close() {
	s.rpc.Close()
	<-s.done
	s.src.Close()
	os.RemoveAll(s.scratch)
}

// serveBackup starts the server of backup m: on opts.Listen, or on the
// local address zpctl reaches master from.
func serveBackup(ctx context.Context, opts RestoreOptions, m *Manifest, master string) (*backupServer, error) {
	listen := opts.Listen
	if listen == "" {
		// No packet is sent: a UDP "connection" only picks the route.
		c, err := net.Dial("udp", master)
		if err != nil {
			return nil, fmt.Errorf("backup: restore: finding the address %s reaches zpctl at: %w", master, err)
		}
		host := c.LocalAddr().(*net.UDPAddr).IP.String()
		c.Close()
		listen = net.JoinHostPort(host, "0")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	if opts.ServeTLS != nil {
		ln = tls.NewListener(ln, opts.ServeTLS)
	}
	// The checkpoints Serve hands out are the backup's own files; the
	// Source's directory stays empty.
	scratch, err := os.MkdirTemp("", "zpctl-restore-")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	src, err := dbsync.NewSource(dbsync.SourceOptions{Dir: scratch, MaxSessions: opts.Parallel + 2, Logger: opts.Logger})
	if err != nil {
		ln.Close()
		os.RemoveAll(scratch)
		return nil, err
	}
	src.SetRate(opts.Rate)
	parts := make(map[uint32]Partition, len(m.Partitions))
	for _, p := range m.Partitions {
		parts[p.ID] = p
	}
	s := &backupServer{addr: ln.Addr().String(), src: src, scratch: scratch, done: make(chan struct{})}
	token := secret.NewToken(opts.ClusterSecret)
	handler := func(ctx context.Context, req *zppb.Request) *zppb.Response {
		if token.Set() && !token.Matches(req.GetClusterToken()) {
			return status.Response(status.New(zppb.Code_UNAUTHENTICATED, "the backup is served to the cluster's nodes only (cluster secret)"))
		}
		switch c := req.Cmd.(type) {
		case *zppb.Request_FullsyncStart:
			p, ok := parts[c.FullsyncStart.GetPartition()]
			if !ok || c.FullsyncStart.GetTable() != opts.Table {
				return status.Response(status.New(zppb.Code_TABLE_NOT_FOUND, "this server restores %s, not %s/%d", opts.Table, c.FullsyncStart.GetTable(), c.FullsyncStart.GetPartition()))
			}
			dir, err := opts.Target.LocalDir(m.Name, p.Dir)
			if err != nil {
				return status.Response(err)
			}
			files := make([]*zppb.SyncFile, 0, len(p.Files))
			for _, f := range p.Files {
				files = append(files, &zppb.SyncFile{Name: f.Name, Size: f.Size, Crc32C: f.CRC32C})
			}
			resp, err := src.Serve(opts.Table, p.ID, dir, p.Term, p.LSN, files)
			if err != nil {
				return status.Response(err)
			}
			return &zppb.Response{Result: &zppb.Response_FullsyncStart{FullsyncStart: resp}}
		case *zppb.Request_FullsyncFetch:
			data, err := src.Fetch(ctx, c.FullsyncFetch)
			if err != nil {
				return status.Response(err)
			}
			s.served.Add(uint64(len(data)))
			return &zppb.Response{Result: &zppb.Response_FullsyncFetch{FullsyncFetch: &zppb.FullSyncFetchResponse{Data: data}}}
		case *zppb.Request_FullsyncEnd:
			if err := src.End(c.FullsyncEnd.GetSession()); err != nil {
				return status.Response(err)
			}
			return &zppb.Response{}
		}
		return status.Response(status.New(zppb.Code_INVALID_ARGUMENT, "%T is not a full-sync call", req.Cmd))
	}
	s.rpc, err = rpc.NewServer(rpc.ServerConfig{Handler: handler, Logger: opts.Logger})
	if err != nil {
		ln.Close()
		src.Close()
		os.RemoveAll(scratch)
		return nil, err
	}
	go func() {
		defer close(s.done)
		s.rpc.Serve(ln)
	}()
	return s, nil
}

// servedProgress reports the bytes a backupServer served as a partition's
// progress does.
type servedProgress struct {
	total  uint64
	served *atomic.Uint64
}

func (p *servedProgress) Bytes() (total, fetched, reused uint64) {
	return p.total, p.served.Load(), 0
}
