package server

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// adminOnly reports whether req changes the cluster or reads the tables'
// credentials, and so needs the admin token of meta servers started with
// one. Reads (PULL, the lists, move status, plans and dry runs, the
// scheduler's status) and the nodes' PINGs do not: a node is not an
// administrator (it authenticates with the cluster secret, nodeOnly).
func adminOnly(req *zppb.Request) bool {
	switch c := req.GetCmd().(type) {
	case *zppb.Request_CreateTable, *zppb.Request_DropTable, *zppb.Request_SetQuota, *zppb.Request_TableAuth, *zppb.Request_FinishRestore,
		*zppb.Request_AddSlave, *zppb.Request_RemoveSlave, *zppb.Request_SetMaster, *zppb.Request_Migrate, *zppb.Request_Split,
		*zppb.Request_CancelMove, *zppb.Request_RemoveNodes, *zppb.Request_CordonNodes,
		*zppb.Request_AddMeta, *zppb.Request_RemoveMeta:
		return true
	case *zppb.Request_Rebalance:
		return !c.Rebalance.GetDryRun()
	case *zppb.Request_Schedule:
		return len(scheduleChanges(c.Schedule)) > 0
	}
	return false
}

// nodeOnly reports whether req is one only nodes send: a PING (a stranger
// posing as a node would be given replicas), a STARTING and a PULL of the tables'
// password verifiers (PullRequest.credentials).
func nodeOnly(req *zppb.Request) bool {
	switch c := req.GetCmd().(type) {
	case *zppb.Request_Ping, *zppb.Request_Starting:
		return true
	case *zppb.Request_Pull:
		return c.Pull.GetCredentials()
	}
	return false
}

// authorize refuses a node's request without the cluster secret and an
// administrative request without the admin token, when this server has
// them. No token appears in an error.
func (s *Server) authorize(ctx context.Context, req *zppb.Request) error {
	checkCluster := nodeOnly(req) && s.clusterToken.Set() && !s.cfg.ClusterSecretSendOnly
	checkAdmin := s.adminToken.Set() && adminOnly(req)
	if !checkCluster && !checkAdmin {
		return nil
	}
	// Guessing is slowed down per client IP (a follower's wrong guesses
	// are refused there, never forwarded to be counted against it here).
	peer := rpc.PeerAddr(ctx)
	if !s.authFailures.Allow(peer) {
		return status.New(zppb.Code_UNAUTHENTICATED, "too many wrong secrets from this address: try again in a few seconds")
	}
	if checkCluster && !s.clusterToken.Matches(req.GetClusterToken()) {
		s.failedAuth(peer, len(req.GetClusterToken()) > 0)
		return status.New(zppb.Code_UNAUTHENTICATED, "a node's PING, and a PULL of the tables' password verifiers, need this cluster's secret (zpnode --cluster-secret-file); none or another was given")
	}
	if !checkAdmin {
		return nil
	}
	if len(req.GetAdminToken()) == 0 {
		return status.New(zppb.Code_UNAUTHENTICATED, "this request changes the cluster and needs the admin token (zpctl --admin-token-file)")
	}
	if !s.adminToken.Matches(req.GetAdminToken()) {
		s.failedAuth(peer, true)
		return status.New(zppb.Code_UNAUTHENTICATED, "the admin token given is not the meta servers' one")
	}
	return nil
}

// failedAuth counts a refused secret, and spends one of the client's
// attempts when it was a guess (a wrong one, not a missing one).
func (s *Server) failedAuth(peer string, guess bool) {
	s.metrics.authFailures.Inc()
	if guess {
		s.authFailures.Failed(peer)
	}
}
