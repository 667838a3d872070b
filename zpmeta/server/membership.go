package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// ADD_META and REMOVE_META change the Raft configuration. They run on the
// ready leader (see onLeader), are idempotent, and answer with the
// membership after the change. A member added here gets its address as its
// Raft ID, as the members bootstrapped from --peers have.

// probeTimeout bounds asking a meta server that is about to be added who it
// is, so that an address that swallows packets leaves time for the answer.
const probeTimeout = 2 * time.Second

// errHandedOver tells onLeader that this member gave up leadership to carry
// out the request (a change that takes its own vote away) and that the new
// leader must run it.
var errHandedOver = errors.New("leadership handed over")

// addMeta adds req.Addr as a voter, or a nonvoter with req.Nonvoter; an
// existing member gets that suffrage.
func (s *Server) addMeta(ctx context.Context, req *zppb.AddMetaRequest) (*zppb.Response, error) {
	want := raft.Voter
	if req.GetNonvoter() {
		want = raft.Nonvoter
	}
	return s.changeMembership(ctx, req.GetAddr(), func(mc memberChange) error {
		var err error
		switch {
		case mc.found && mc.member.Suffrage == want:
			return nil
		case mc.found && want == raft.Nonvoter:
			if err := s.takeVote(ctx, mc, "demote itself"); err != nil {
				return err
			}
			err = s.changeConfig(ctx, func(timeout time.Duration) raft.IndexFuture {
				return s.raft.DemoteVoter(mc.member.ID, mc.index, timeout)
			})
		case mc.found:
			// A nonvoter (or staging) member becomes a voter.
			err = s.changeConfig(ctx, func(timeout time.Duration) raft.IndexFuture {
				return s.raft.AddVoter(mc.member.ID, mc.member.Address, mc.index, timeout)
			})
		default:
			if err := s.probeNewMember(ctx, mc.cfg, mc.addr); err != nil {
				return err
			}
			id, addr := raft.ServerID(mc.addr), raft.ServerAddress(mc.addr)
			err = s.changeConfig(ctx, func(timeout time.Duration) raft.IndexFuture {
				if want == raft.Nonvoter {
					return s.raft.AddNonvoter(id, addr, mc.index, timeout)
				}
				return s.raft.AddVoter(id, addr, mc.index, timeout)
			})
		}
		if err == nil {
			s.logger.Info("meta member added or changed", "addr", mc.addr, "suffrage", suffrage(want))
		}
		return err
	})
}

// removeMeta removes req.Addr from the configuration; removing a server that
// is not a member changes nothing and succeeds.
func (s *Server) removeMeta(ctx context.Context, req *zppb.RemoveMetaRequest) (*zppb.Response, error) {
	return s.changeMembership(ctx, req.GetAddr(), func(mc memberChange) error {
		if !mc.found {
			return nil
		}
		if err := s.takeVote(ctx, mc, "remove itself"); err != nil {
			return err
		}
		err := s.changeConfig(ctx, func(timeout time.Duration) raft.IndexFuture {
			return s.raft.RemoveServer(mc.member.ID, mc.index, timeout)
		})
		if err == nil {
			s.logger.Info("meta member removed", "addr", mc.addr, "id", mc.member.ID)
		}
		return err
	})
}

// memberChange is what a membership change works from: the server it names,
// the latest configuration and its log index, and the server's entry in it.
type memberChange struct {
	addr   string
	cfg    raft.Configuration
	index  uint64
	member raft.Server
	found  bool // addr is a member
}

// changeMembership checks addr and runs change under the proposal lock, so
// that it decides on the configuration no other change is altering, then
// answers with the membership afterwards.
func (s *Server) changeMembership(ctx context.Context, addr string, change func(memberChange) error) (*zppb.Response, error) {
	if err := validateMetaAddr(addr); err != nil {
		return nil, err
	}
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cfg, index, err := s.configuration(ctx)
	if err != nil {
		return nil, err
	}
	member, found := findMember(cfg, addr)
	if err := change(memberChange{addr: addr, cfg: cfg, index: index, member: member, found: found}); err != nil {
		return nil, err
	}
	return s.membersResponse(ctx)
}

// takeVote clears the way for a change that takes mc.member's vote away: it
// refuses to take the last voter's, and when the vote is this leader's own,
// hands leadership over (errHandedOver) for the new leader to make the
// change.
func (s *Server) takeVote(ctx context.Context, mc memberChange, why string) error {
	if err := checkKeepsVoter(mc.cfg, mc.member); err != nil {
		return err
	}
	if mc.member.ID == raft.ServerID(s.cfg.ID) {
		return s.handOver(ctx, why)
	}
	return nil
}

// validateMetaAddr checks that addr is host:port with a usable port.
func validateMetaAddr(addr string) error {
	if addr == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "meta server address is empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return status.New(zppb.Code_INVALID_ARGUMENT, "meta server address %q is not host:port", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "meta server address %q: port %q is not in [1, 65535]", addr, port)
	}
	return nil
}

// findMember finds the member with address addr, or with ID addr (members
// that were given an --id keep it).
func findMember(cfg raft.Configuration, addr string) (raft.Server, bool) {
	for _, srv := range cfg.Servers {
		if string(srv.Address) == addr || string(srv.ID) == addr {
			return srv, true
		}
	}
	return raft.Server{}, false
}

// checkKeepsVoter refuses a change that takes the vote of member away when
// it is the last voter: a group without voters can never elect a leader.
func checkKeepsVoter(cfg raft.Configuration, member raft.Server) error {
	if member.Suffrage != raft.Voter {
		return nil
	}
	voters := 0
	for _, srv := range cfg.Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters <= 1 {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s is the last voter of the meta group; add another voter first", member.Address)
	}
	return nil
}

// probeNewMember asks addr for its state before it becomes a member: it must
// answer as a meta server under that address, and must not belong to
// another Raft group (e.g. one it bootstrapped alone because it was started
// without --bootstrap=false), whose log would clash with this one's.
func (s *Server) probeNewMember(ctx context.Context, cfg raft.Configuration, addr string) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := s.pool.Call(pctx, addr, &zppb.Request{Cmd: &zppb.Request_ListMeta{ListMeta: &zppb.ListMetaRequest{}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s does not answer as a meta server (%v); start it with --bootstrap=false first", addr, err)
	}
	lm := resp.GetListMeta()
	if lm.GetSelf() != addr {
		return status.New(zppb.Code_INVALID_ARGUMENT, "%s answers as meta server %q; add it by the address it advertises (--addr)", addr, lm.GetSelf())
	}
	var others []string
	for _, m := range lm.GetMembers() {
		if m.GetAddr() == addr {
			continue
		}
		if _, ours := findMember(cfg, m.GetAddr()); ours {
			// A former member of this group: Raft brings it up to date.
			return nil
		}
		others = append(others, m.GetAddr())
	}
	if len(lm.GetMembers()) > 0 {
		slices.Sort(others)
		return status.New(zppb.Code_INVALID_ARGUMENT,
			"%s belongs to another Raft group (members %v, epoch %d); restart it with an empty --data and --bootstrap=false", addr, append(others, addr), lm.GetEpoch())
	}
	return nil
}

// isMember reports whether the latest Raft configuration lists this server.
// Raft answers GetConfiguration from memory, without waiting.
func (s *Server) isMember() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return slices.ContainsFunc(f.Configuration().Servers, func(srv raft.Server) bool {
		return srv.ID == raft.ServerID(s.cfg.ID)
	})
}

// configuration returns the latest Raft configuration and its log index.
func (s *Server) configuration(ctx context.Context) (raft.Configuration, uint64, error) {
	f := s.raft.GetConfiguration()
	if err := s.await(ctx, f); err != nil {
		return raft.Configuration{}, 0, s.raftError(ctx, err)
	}
	return f.Configuration(), f.Index(), nil
}

// changeConfig runs one configuration change and waits until it is
// committed, within ctx. start gets the time Raft may take to accept it.
func (s *Server) changeConfig(ctx context.Context, start func(timeout time.Duration) raft.IndexFuture) error {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return s.ctxError(ctx, "before changing the membership")
		}
	}
	if err := s.await(ctx, start(timeout)); err != nil {
		return s.raftError(ctx, err)
	}
	return nil
}

// handOver transfers leadership to another voter so that the new leader
// carries out a change that takes this member's vote away: a leader that
// removed itself would stop serving before answering.
func (s *Server) handOver(ctx context.Context, why string) error {
	s.logger.Info("handing leadership over", "reason", why)
	if err := s.await(ctx, s.raft.LeadershipTransfer()); err != nil {
		return fmt.Errorf("hand leadership over to %s: %w", why, s.raftError(ctx, err))
	}
	return errHandedOver
}

// membersResponse answers with the configuration as this member has it.
func (s *Server) membersResponse(ctx context.Context) (*zppb.Response, error) {
	lm, err := s.metaMembers(ctx)
	if err != nil {
		return nil, err
	}
	return &zppb.Response{Epoch: lm.Epoch, Result: &zppb.Response_MetaMembers{MetaMembers: lm}}, nil
}
