package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Security is what a cluster requires, as probed with requests that
// change nothing.
type Security struct {
	// AdminToken: the meta servers refuse writes without the admin token.
	AdminToken bool `json:"admin_token"`
	// ClusterSecret: nodes refuse peer requests without the cluster
	// secret (probed on one node).
	ClusterSecret bool `json:"cluster_secret"`
	// TLS: the probes went over TLS, which a server with TLS requires.
	TLS bool `json:"tls"`
}

// Security probes what the cluster requires: a CORDON of no nodes to a
// meta server without the admin token (refused as UNAUTHENTICATED when it
// needs one, as INVALID_ARGUMENT otherwise) and a NOTIFY of epoch 0 to
// node without the cluster secret. Neither changes anything, and
// neither presents a secret, so neither counts as a guess.
func (c *core) Security(ctx context.Context, node string) (Security, error) {
	sec := Security{TLS: c.opts.TLS != nil}
	var errs []error
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	probe := func(addr string, req *zppb.Request, open zppb.Code) (bool, error) {
		resp, err := c.pool.Call(ctx, addr, req)
		if err != nil {
			return false, err
		}
		switch resp.GetCode() {
		case zppb.Code_UNAUTHENTICATED:
			return true, nil
		case open:
			return false, nil
		}
		return false, fmt.Errorf("%s answered %w", addr, status.FromResponse(resp))
	}
	var metaErr error
	for _, m := range c.metas {
		var err error
		if sec.AdminToken, err = probe(m, &zppb.Request{Cmd: &zppb.Request_CordonNodes{CordonNodes: &zppb.CordonNodesRequest{}}}, zppb.Code_INVALID_ARGUMENT); err == nil {
			metaErr = nil
			break
		}
		metaErr = err
	}
	if metaErr != nil {
		errs = append(errs, fmt.Errorf("admin token probe: %w", metaErr))
	}
	if node != "" {
		var err error
		if sec.ClusterSecret, err = probe(node, &zppb.Request{Cmd: &zppb.Request_Notify{Notify: &zppb.NotifyRequest{}}}, zppb.Code_OK); err != nil {
			errs = append(errs, fmt.Errorf("cluster secret probe: %w", err))
		}
	}
	return sec, errors.Join(errs...)
}

// Certificate is what a server presented in a TLS handshake.
type Certificate struct {
	Addr     string    `json:"addr"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// Certificates connects to each of addrs over TLS and returns the
// certificate each presents, for checks of their expiry; none without
// Options.TLS. An address that cannot be reached is left out, with its
// error joined into the one returned.
func (c *core) Certificates(ctx context.Context, addrs []string) ([]Certificate, error) {
	if c.opts.TLS == nil {
		return nil, nil
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	out := make([]Certificate, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			d := tls.Dialer{Config: c.opts.TLS}
			nc, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", addr, err)
				return
			}
			defer nc.Close()
			if certs := nc.(*tls.Conn).ConnectionState().PeerCertificates; len(certs) > 0 {
				out[i] = Certificate{Addr: addr, Subject: certs[0].Subject.String(), NotAfter: certs[0].NotAfter}
			}
		})
	}
	wg.Wait()
	got := out[:0]
	for _, ce := range out {
		if ce.Addr != "" {
			got = append(got, ce)
		}
	}
	return got, errors.Join(errs...)
}
