package server

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/rpc"
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// peerOnly reports whether req is one that only the cluster's own servers
// send a node: replication from another node (a stranger could pull a
// partition's binlog or full sync, or watch partitions) and meta's NOTIFY. With a cluster
// secret, such a request must carry it.
func peerOnly(req *zppb.Request) bool {
	switch req.GetCmd().(type) {
	case *zppb.Request_TrySync, *zppb.Request_BinlogPull, *zppb.Request_BinlogWatch,
		*zppb.Request_FullsyncStart, *zppb.Request_FullsyncFetch, *zppb.Request_FullsyncEnd,
		*zppb.Request_Notify:
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
