package server

import (
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// adminOnly reports whether req changes the cluster, and so needs the
// admin token of meta servers started with one. Reads (PULL, the lists,
// move status, plans and dry runs, the scheduler's status) and the nodes'
// PINGs do not: a node is not an administrator (its traffic is to
// authenticate with a cluster secret, issue 18).
func adminOnly(req *zppb.Request) bool {
	switch c := req.GetCmd().(type) {
	case *zppb.Request_CreateTable, *zppb.Request_DropTable, *zppb.Request_SetQuota,
		*zppb.Request_AddSlave, *zppb.Request_RemoveSlave, *zppb.Request_SetMaster, *zppb.Request_Migrate,
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

// authorize refuses a PING without the cluster secret and an
// administrative request without the admin token, when this server has
// them. No token appears in an error.
func (s *Server) authorize(req *zppb.Request) error {
	if _, ping := req.GetCmd().(*zppb.Request_Ping); ping && s.clusterToken.Set() && !s.cfg.ClusterSecretSendOnly &&
		!s.clusterToken.Matches(req.GetClusterToken()) {
		// A stranger posing as a node would be given replicas.
		return status.New(zppb.Code_UNAUTHENTICATED, "a node's PING needs this cluster's secret (zpnode --cluster-secret-file); none or another was given")
	}
	if !s.adminToken.Set() || !adminOnly(req) {
		return nil
	}
	if len(req.GetAdminToken()) == 0 {
		return status.New(zppb.Code_UNAUTHENTICATED, "this request changes the cluster and needs the admin token (zpctl --admin-token-file)")
	}
	if !s.adminToken.Matches(req.GetAdminToken()) {
		s.metrics.authFailures.Inc()
		return status.New(zppb.Code_UNAUTHENTICATED, "the admin token given is not the meta servers' one")
	}
	return nil
}
