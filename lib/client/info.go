package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Info asks one node for a section of its state (server, stats, capacity,
// replication, slowlog), for one table or, when table is empty, for all. The answer
// is the protocol's message, as is: it is a diagnostic dump whose fields
// grow with the server. One attempt: a diagnostic should show what the node
// says now, not what it says after retries.
func (c *Client) Info(ctx context.Context, nodeAddr string, section zppb.InfoSection, table string) (*zppb.InfoResponse, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("client: info: %w", ErrClosed)
	}
	if nodeAddr == "" {
		return nil, fmt.Errorf("client: info: %w", status.New(zppb.Code_INVALID_ARGUMENT, "empty node address"))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.pool.Call(ctx, nodeAddr, &zppb.Request{Cmd: &zppb.Request_Info{Info: &zppb.InfoRequest{Section: section, Table: table}}})
	if err == nil {
		err = status.FromResponse(resp)
	}
	if err != nil {
		return nil, fmt.Errorf("client: info %s: %w", nodeAddr, err)
	}
	if resp.GetInfo() == nil {
		return &zppb.InfoResponse{}, nil
	}
	return resp.GetInfo(), nil
}

// NodeInfo is what one node answered to the INFO sections InfoNodes asked
// for.
type NodeInfo struct {
	Addr string
	// Info holds every section that answered, merged into one message;
	// never nil.
	Info *zppb.InfoResponse
	// Err is the failure of the first section (in the order asked) that
	// did not answer; nil when all did.
	Err error
}

// InfoNodes asks each node in addrs for each of sections (every section
// when none is given), for one table or, when table is empty, for all. All
// the calls run in parallel with one attempt each, so a survey of the
// cluster takes one round trip, and a dead node costs its dial or ctx's
// deadline, not the sum over nodes. The result has one entry per address,
// in the order given; a node that failed has what it did answer and Err.
func (c *Client) InfoNodes(ctx context.Context, addrs []string, table string, sections ...zppb.InfoSection) []NodeInfo {
	if len(sections) == 0 {
		sections = []zppb.InfoSection{zppb.InfoSection_INFO_SERVER, zppb.InfoSection_INFO_STATS,
			zppb.InfoSection_INFO_CAPACITY, zppb.InfoSection_INFO_REPLICATION}
	}
	out := make([]NodeInfo, len(addrs))
	answers := make([][]*zppb.InfoResponse, len(addrs))
	errs := make([][]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		answers[i] = make([]*zppb.InfoResponse, len(sections))
		errs[i] = make([]error, len(sections))
		for j, sec := range sections {
			wg.Go(func() {
				answers[i][j], errs[i][j] = c.Info(ctx, addr, sec, table)
			})
		}
	}
	wg.Wait()
	for i, addr := range addrs {
		ni := NodeInfo{Addr: addr, Info: &zppb.InfoResponse{}}
		for j := range sections {
			if err := errs[i][j]; err != nil {
				if ni.Err == nil {
					ni.Err = err
				}
				continue
			}
			a := answers[i][j]
			if a.GetServer() != nil {
				ni.Info.Server = a.GetServer()
			}
			ni.Info.Stats = append(ni.Info.Stats, a.GetStats()...)
			ni.Info.Capacity = append(ni.Info.Capacity, a.GetCapacity()...)
			ni.Info.Replication = append(ni.Info.Replication, a.GetReplication()...)
			ni.Info.Slowlog = append(ni.Info.Slowlog, a.GetSlowlog()...)
		}
		out[i] = ni
	}
	return out
}
