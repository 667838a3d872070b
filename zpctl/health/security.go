package health

import (
	"fmt"
	"strings"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/protect"
)

// security warns when the cluster listens beyond loopback without the
// secrets that keep strangers from changing it (docs/security.md): the
// admin token on the meta servers, the cluster secret among servers, and
// TLS (checkup reached the servers in plain TCP, which one with TLS
// refuses).
func (c *checker) security() {
	sec := c.s.Security
	if sec == nil || sec.AdminToken && sec.ClusterSecret && sec.TLS {
		return
	}
	var exposed []string
	if c.s.Meta != nil {
		for _, m := range c.s.Meta.Members {
			if !protect.Loopback(m.Addr) {
				exposed = append(exposed, m.Addr)
			}
		}
	}
	for _, n := range c.s.Nodes {
		if !protect.Loopback(n.Addr) {
			exposed = append(exposed, n.Addr)
		}
	}
	if len(exposed) == 0 {
		return
	}
	var missing []string
	if !sec.AdminToken {
		missing = append(missing, "no admin token (anyone who reaches a meta server can change the topology: zpmeta --admin-token-file)")
	}
	if !sec.ClusterSecret {
		missing = append(missing, "no cluster secret (anyone can pose as a node or a slave: --cluster-secret-file)")
	}
	if !sec.TLS {
		missing = append(missing, "no TLS (tokens, secrets and data cross the network in the clear: --tls-cert)")
	}
	if len(exposed) > 3 {
		exposed = append(exposed[:3], "...")
	}
	c.add(Problem{Severity: Warning, Check: CheckSecurity,
		Message: "the cluster listens beyond loopback (" + strings.Join(exposed, ", ") + ") with " + strings.Join(missing, " and ")})
}

// certificates warns of TLS certificates that expire within
// CertificateWarning of the snapshot: an expired one takes its server
// off the cluster.
func (c *checker) certificates() {
	for _, ce := range c.s.Certificates {
		if left := ce.NotAfter.Sub(c.s.Taken); left < CertificateWarning {
			c.add(Problem{Severity: Warning, Check: CheckCertificate, Node: ce.Addr,
				Message: fmt.Sprintf("the TLS certificate of %s (%s) expires %s, in %s: rotate it (docs/security.md)",
					ce.Addr, ce.Subject, ce.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Hour))})
		}
	}
}
