package server

import (
	"context"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// rebalance plans EXPAND, SHRINK or REPLACE with lib/placement and queues
// the moves (or only returns them, for a dry run).
func (s *Server) rebalance(ctx context.Context, req *zppb.RebalanceRequest) (*zppb.Response, error) {
	return nil, status.New(zppb.Code_INVALID_ARGUMENT, "rebalance is not available yet")
}
