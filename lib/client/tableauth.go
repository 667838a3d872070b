package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// callNode sends req to the node at addr with the password of its table
// from Options.TablePasswords, if any: every request to a node goes
// through here.
func (c *core) callNode(ctx context.Context, addr string, req *zppb.Request) (*zppb.Response, error) {
	if pw := c.opts.TablePasswords[tableauth.RequestTable(req)]; len(pw) > 0 {
		req.TablePassword = pw
	}
	return c.pool.Call(ctx, addr, req)
}

// TablePassword is one of a table's passwords as the meta servers show
// it: its id (a fingerprint of its verifier), when it was added and how it
// is hashed; never the password nor its verifier.
type TablePassword struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Scheme    string    `json:"scheme"`
}

func tablePasswordsFromPB(creds []*zppb.TableCredential) []TablePassword {
	out := make([]TablePassword, 0, len(creds))
	for _, c := range creds {
		out = append(out, TablePassword{
			ID: c.GetId(), CreatedAt: time.UnixMilli(c.GetCreatedUnixMs()).UTC(),
			Scheme: fmt.Sprintf("argon2id t=%d m=%dKiB p=%d", c.GetTime(), c.GetMemoryKib(), c.GetThreads()),
		})
	}
	return out
}

// TablePasswords lists a table's passwords. Meta servers with an admin
// token require it (Options.AdminToken).
func (c *core) TablePasswords(ctx context.Context, table string) ([]TablePassword, error) {
	resp, err := c.tableAuth(ctx, "list table passwords", &zppb.TableAuthRequest{Table: table}, false)
	if err != nil {
		return nil, err
	}
	return tablePasswordsFromPB(resp.GetCredentials()), nil
}

// AddTablePassword adds password to a table's passwords (a rotation adds
// the new one, moves the clients to it, then removes the old one); the
// table is protected from then on. It returns the new password's id and
// the table's passwords. Nodes take it within a PING.
func (c *core) AddTablePassword(ctx context.Context, table string, password []byte) (string, []TablePassword, error) {
	if err := tableauth.CheckPassword(password); err != nil {
		return "", nil, fmt.Errorf("client: add table password: %w", err)
	}
	resp, err := c.tableAuth(ctx, "add table password", &zppb.TableAuthRequest{Table: table, Op: zppb.TableAuthOp_TABLE_AUTH_ADD, Password: password}, true)
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), tablePasswordsFromPB(resp.GetCredentials()), nil
}

// RemoveTablePassword removes one of a table's passwords, named by the
// password itself or by its id (one of them); the last one cannot be
// removed. It returns the id removed and the passwords left.
func (c *core) RemoveTablePassword(ctx context.Context, table string, password []byte, id string) (string, []TablePassword, error) {
	resp, err := c.tableAuth(ctx, "remove table password", &zppb.TableAuthRequest{Table: table, Op: zppb.TableAuthOp_TABLE_AUTH_REMOVE, Password: password, Id: id}, true)
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), tablePasswordsFromPB(resp.GetCredentials()), nil
}

func (c *core) tableAuth(ctx context.Context, op string, req *zppb.TableAuthRequest, write bool) (*zppb.TableAuthResponse, error) {
	resp, _, err := c.callMeta(ctx, op, func() *zppb.Request {
		return &zppb.Request{Cmd: &zppb.Request_TableAuth{TableAuth: &zppb.TableAuthRequest{
			Table: req.Table, Op: req.Op, Password: req.Password, Id: req.Id}}}
	}, true)
	if err != nil {
		return nil, err
	}
	ta := resp.GetTableAuth()
	if write {
		c.sawEpoch(ta.GetEpoch())
		c.refreshInBackground(ta.GetEpoch())
	}
	return ta, nil
}
