package server

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// peerOnly reports whether req is one that only the cluster's own servers
// send a node: replication from another node (a stranger could pull a
// partition's binlog or full sync, or watch partitions), meta's NOTIFY,
// a restore (zpctl backup restore, which holds the secret: a stranger
// could overwrite a partition), an export (a partition's data, as a
// full sync), a bulk load (it writes a partition as a restore does) and
// the meta leader's SPLITPOINT (it reads through a partition's keys).
// With a cluster secret, such a request must carry it.
func peerOnly(req *zppb.Request) bool {
	switch req.GetCmd().(type) {
	case *zppb.Request_TrySync, *zppb.Request_BinlogPull, *zppb.Request_BinlogWatch,
		*zppb.Request_FullsyncStart, *zppb.Request_FullsyncFetch, *zppb.Request_FullsyncEnd,
		*zppb.Request_Notify, *zppb.Request_RestorePartition,
		*zppb.Request_ExportStart, *zppb.Request_ExportNext, *zppb.Request_ExportEnd,
		*zppb.Request_BulkStage, *zppb.Request_BulkIngest, *zppb.Request_BulkFetch,
		*zppb.Request_SplitPoint:
		return true
	}
	return false
}

// checkPeer refuses a peer-only request without the cluster secret, when
// the node has one and enforces it. Neither secret appears in the error.
func (s *Server) checkPeer(ctx context.Context, req *zppb.Request) error {
	if !s.clusterToken.Set() || s.cfg.ClusterSecretSendOnly || !peerOnly(req) {
		return nil
	}
	// Refusals count in zeppelin_node_requests_total by command, with
	// code UNAUTHENTICATED; guessing is slowed down per client IP.
	peer := rpc.PeerAddr(ctx)
	if !s.authFailures.Allow(peer) {
		return status.New(zppb.Code_UNAUTHENTICATED, "too many wrong secrets from this address: try again in a few seconds")
	}
	if !s.clusterToken.Matches(req.GetClusterToken()) {
		if len(req.GetClusterToken()) > 0 {
			s.authFailures.Failed(peer)
		}
		return status.New(zppb.Code_UNAUTHENTICATED, "replication and NOTIFY need this cluster's secret (--cluster-secret-file); none or another was given")
	}
	return nil
}

// checkTable refuses a data command on a table with passwords
// (tableauth.Protected) that does not carry one of them
// (Request.table_password); a table without passwords takes any request,
// as before. Replication and node-wide requests name no table of their
// own and are not checked here (checkPeer).
func (s *Server) checkTable(ctx context.Context, req *zppb.Request) error {
	if !s.topo.Load().protected || peerOnly(req) {
		return nil
	}
	table := tableauth.RequestTable(req)
	if table == "" {
		return nil
	}
	return s.checkTablePassword(ctx, table, req.GetTablePassword())
}

// tableOpenCached reports whether req may run without an argon2id
// computation: its table has no passwords, or it carries one already
// verified. Nothing is counted: start asks it to decide whether a SET may
// take the fast path, and leaves every other case to checkTable.
func (s *Server) tableOpenCached(req *zppb.Request) bool {
	topo := s.topo.Load()
	if !topo.protected {
		return true
	}
	tb := topo.tables[tableauth.RequestTable(req)]
	return !tableauth.Protected(tb) || s.tablePasswords.Check(tb.GetCredentials(), req.GetTablePassword())
}

// checkTablePassword is checkTable's rule, which the RESP front's AUTH
// shares: nil when password opens table (any does one without passwords,
// or unknown). A verified password is remembered (tableauth.Cache); a
// wrong one is counted in zeppelin_node_table_auth_failures_total and
// spends one of the client IP's attempts (secret.FailureLimiter). The
// password is in no error.
func (s *Server) checkTablePassword(ctx context.Context, table string, password []byte) error {
	tb := s.topo.Load().tables[table]
	if !tableauth.Protected(tb) {
		return nil
	}
	creds := tb.GetCredentials()
	if len(password) == 0 {
		s.metrics.tableAuthFailures.Inc()
		return status.New(zppb.Code_UNAUTHENTICATED, "table %q needs one of its passwords (client.Options.TablePasswords, zpctl --table-password-file, RESP AUTH %s <password>)", table, table)
	}
	if s.tablePasswords.Check(creds, password) {
		return nil
	}
	peer := rpc.PeerAddr(ctx)
	if !s.authFailures.Allow(peer) {
		s.metrics.tableAuthFailures.Inc()
		return status.New(zppb.Code_UNAUTHENTICATED, "too many wrong secrets from this address: try again in a few seconds")
	}
	if s.tablePasswords.Verify(creds, password) {
		return nil
	}
	s.authFailures.Failed(peer)
	s.metrics.tableAuthFailures.Inc()
	return status.New(zppb.Code_UNAUTHENTICATED, "the password given for table %q is not one of its passwords", table)
}
