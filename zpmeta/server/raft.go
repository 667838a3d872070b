package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftTimeout bounds one Raft RPC on the network transport.
const raftTimeout = 10 * time.Second

// openRaft opens the stores in the data directory and starts Raft over the
// mux's Raft side, bootstrapping the group when there is no state yet.
func (s *Server) openRaft() error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("zpmeta: data dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("zpmeta: open raft store: %w", err)
	}
	s.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, newHclog(cfg.Logger, "raft-snapshot"))
	if err != nil {
		return fmt.Errorf("zpmeta: open snapshot store: %w", err)
	}
	s.stream = &raftStream{muxListener: s.mux.raft, tls: s.tls.DialConfig}
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.stream,
		MaxPool: 3,
		Timeout: raftTimeout,
		Logger:  newHclog(cfg.Logger, "raft-net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = s.leaderCh
	rc.Logger = newHclog(cfg.Logger, "raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("zpmeta: raft config: %w", err)
	}

	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("zpmeta: read raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, s.fsm, store, store, snaps, s.transport)
	if err != nil {
		return fmt.Errorf("zpmeta: start raft: %w", err)
	}
	s.raft = r
	if existing || cfg.NoBootstrap {
		return nil
	}
	var servers []raft.Server
	for _, p := range cfg.Peers {
		id := raft.ServerID(p)
		if p == cfg.Addr {
			id = raft.ServerID(cfg.ID)
		}
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: raft.ServerAddress(p)})
	}
	// Every member bootstraps with the same configuration; whichever
	// entries lose are replaced by the elected leader's identical one.
	if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("zpmeta: bootstrap: %w", err)
	}
	s.cfg.Logger.Info("bootstrapped raft group", "peers", cfg.Peers)
	return nil
}
