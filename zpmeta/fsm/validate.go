package fsm

import (
	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/topo"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// NormalizeCreateTable fills the defaults of req in place (replicas 0 means
// topo.DefaultReplicas) and checks what does not depend on the state
// (topo.ValidateTableShape).
func NormalizeCreateTable(req *zppb.CreateTableRequest) error {
	req.Replicas = topo.Replicas(req.Replicas)
	if err := topo.ValidateTableShape(req.GetName(), req.GetPartitions(), req.GetReplicas(), req.GetMinSyncReplicas()); err != nil {
		return err
	}
	return topo.ValidateSplitSize(req.GetSplitSize())
}

// checkEpoch fails with STALE_EPOCH when expected is set and is not current.
func checkEpoch(expected, current uint64) error {
	if expected != 0 && expected != current {
		err := status.New(zppb.Code_STALE_EPOCH, "expected epoch %d, current is %d", expected, current)
		err.Epoch = current
		return err
	}
	return nil
}
