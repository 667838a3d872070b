package server

import (
	"context"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/lib/tableauth"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
	"github.com/zeppelin-kv/zeppelin/zpmeta/fsm"
)

// hashPasswords turns the passwords of a request into verifiers: the
// leader is the only member that ever holds a password, in memory, for
// the time of the request.
func (s *Server) hashPasswords(passwords [][]byte) ([]*zppb.TableCredential, error) {
	if len(passwords) > tableauth.MaxCredentials {
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "%d passwords, at most %d", len(passwords), tableauth.MaxCredentials)
	}
	now := time.Now()
	creds := make([]*zppb.TableCredential, 0, len(passwords))
	for _, pw := range passwords {
		c, err := tableauth.New(pw, now, s.cfg.TablePasswordCost)
		if err != nil {
			return nil, err
		}
		creds = append(creds, c)
	}
	return creds, nil
}

// tableAuth lists, adds or removes a table's passwords (TABLE_AUTH). The
// answer lists what the table then has, without verifiers. A password to
// remove is found by verifying it against each of the table's.
func (s *Server) tableAuth(ctx context.Context, req *zppb.TableAuthRequest) (*zppb.Response, error) {
	var add []*zppb.TableCredential
	switch req.GetOp() {
	case zppb.TableAuthOp_TABLE_AUTH_LIST:
		creds, _, err := s.fsm.Credentials(req.GetTable())
		if err != nil {
			return nil, err
		}
		return tableAuthResponse(s.fsm.Epoch(), "", creds), nil
	case zppb.TableAuthOp_TABLE_AUTH_ADD:
		var err error
		if add, err = s.hashPasswords([][]byte{req.GetPassword()}); err != nil {
			return nil, err
		}
	case zppb.TableAuthOp_TABLE_AUTH_REMOVE:
		if (len(req.GetPassword()) == 0) == (req.GetId() == "") {
			return nil, status.New(zppb.Code_INVALID_ARGUMENT, "remove a password by the password or by its id, one of them")
		}
	default:
		return nil, status.New(zppb.Code_INVALID_ARGUMENT, "unknown table auth operation %v", req.GetOp())
	}
	unlock, err := s.lockProposals(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	creds, created, err := s.fsm.Credentials(req.GetTable())
	if err != nil {
		return nil, err
	}
	var remove []string
	id := ""
	if len(add) > 0 {
		id = add[0].Id
	} else {
		id = req.GetId()
		if pw := req.GetPassword(); len(pw) > 0 {
			for _, c := range creds {
				if tableauth.Matches(c, pw) {
					id = c.Id
					break
				}
			}
			if id == "" {
				return nil, status.New(zppb.Code_NOT_FOUND, "the password given is none of table %q's", req.GetTable())
			}
		}
		remove = []string{id}
	}
	res, err := s.propose(ctx, fsm.SetTableCredentials(req.GetTable(), created, add, remove))
	if err != nil {
		return nil, err
	}
	s.logger.Info("table password "+map[bool]string{true: "added", false: "removed"}[len(add) > 0], "table", req.GetTable(), "id", id, "epoch", res.Epoch)
	creds, _, _ = s.fsm.Credentials(req.GetTable())
	// Every node may serve the table: each learns the verifiers now, not
	// at its next PING.
	s.notifyPaced(s.allNodes(), res.Epoch)
	return tableAuthResponse(res.Epoch, id, creds), nil
}

func tableAuthResponse(epoch uint64, id string, creds []*zppb.TableCredential) *zppb.Response {
	out := &zppb.TableAuthResponse{Epoch: epoch, Id: id}
	for _, c := range creds {
		out.Credentials = append(out.Credentials, tableauth.Public(c))
	}
	return &zppb.Response{Epoch: epoch, Result: &zppb.Response_TableAuth{TableAuth: out}}
}
