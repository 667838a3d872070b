package client

import (
	"context"
	"fmt"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Info asks one node for a section of its state (server, stats, capacity,
// replication), for one table or, when table is empty, for all. The answer
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
