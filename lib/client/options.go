package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultPoolConnsPerAddr = 2
	DefaultDialTimeout      = 3 * time.Second
	DefaultTimeout          = 5 * time.Second
	DefaultAttemptTimeout   = 2 * time.Second
	DefaultRetryBackoff     = 10 * time.Millisecond
	DefaultMaxRetryBackoff  = 200 * time.Millisecond
)

// Options configures a Client. Zero values mean the defaults above.
type Options struct {
	// MetaAddrs are the meta servers, host:port. Any of them answers PULL
	// and LIST commands; the client fails over between them. Required.
	MetaAddrs []string

	// PoolConnsPerAddr is how many connections are kept to each server;
	// calls are pipelined on each.
	PoolConnsPerAddr int

	// DialTimeout bounds one dial when the call's context has no earlier
	// deadline.
	DialTimeout time.Duration

	// DefaultTimeout bounds a call whose context has no deadline, retries
	// included.
	DefaultTimeout time.Duration

	// AttemptTimeout bounds one attempt of a call at one node, within the
	// call's deadline. A master that hangs (SIGSTOP, a network partition
	// that drops packets) never answers: after this long the client gives
	// up on it, marks the route stale and tries again at the master the
	// meta servers name, with the same request id, so a call with a long
	// deadline still reaches the new master once a failover is done. An
	// attempt sending a large request has a second more per 4 MiB.
	// Default DefaultAttemptTimeout; negative: attempts last as long as
	// the call.
	AttemptTimeout time.Duration

	// RetryBackoff is the first pause after WAIT (or an unusable MOVE, or a
	// connection error); it doubles on each retry up to MaxRetryBackoff.
	// Pauses are jittered so that clients that met the same failover do not
	// retry in lockstep.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration

	// MaxValueSize, when positive, rejects larger values before they are
	// sent (status VALUE_TOO_LARGE). Zero leaves the check to the server.
	MaxValueSize int

	// TLS, when set, is the config every connection to meta servers and
	// nodes dials with (tlsconf.ClientConfig builds it from PEM files);
	// nil: plain TCP.
	TLS *tls.Config

	// AdminToken is sent with every request to the meta servers: those
	// started with --admin-token-file refuse a request that changes the
	// cluster without it (UNAUTHENTICATED). Never sent to nodes.
	AdminToken []byte

	// TablePasswords are passwords of tables, by name, sent with every
	// data request on that table (Request.table_password): nodes refuse
	// a request on a table with passwords without one of them
	// (UNAUTHENTICATED). Never sent to meta servers, nor with requests on
	// other tables.
	TablePasswords map[string][]byte

	// LazyPull skips the PULL in New. By default New fails when no meta
	// server answers, so that a wrong address shows at start; tools that
	// must work with every meta server down (e.g. to report which are
	// down) set it and let the first data call PULL instead.
	LazyPull bool

	// Logger receives retries and topology changes at debug level and
	// meta-server outages at warn level. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.PoolConnsPerAddr == 0 {
		o.PoolConnsPerAddr = DefaultPoolConnsPerAddr
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.DefaultTimeout == 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = max(DefaultMaxRetryBackoff, o.RetryBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// validate reports every problem at once, so a misconfigured deployment is
// fixed in one round.
func (o *Options) validate() error {
	var errs []error
	if len(o.MetaAddrs) == 0 {
		errs = append(errs, errors.New("MetaAddrs is empty"))
	}
	seen := make(map[string]bool, len(o.MetaAddrs))
	for _, a := range o.MetaAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("MetaAddrs: %q: %w", a, err))
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("MetaAddrs: %q listed twice", a))
		}
		seen[a] = true
	}
	if o.PoolConnsPerAddr < 0 {
		errs = append(errs, fmt.Errorf("PoolConnsPerAddr %d is negative", o.PoolConnsPerAddr))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", o.DialTimeout},
		{"DefaultTimeout", o.DefaultTimeout},
		{"RetryBackoff", o.RetryBackoff},
		{"MaxRetryBackoff", o.MaxRetryBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if o.MaxRetryBackoff > 0 && o.MaxRetryBackoff < o.RetryBackoff {
		errs = append(errs, fmt.Errorf("MaxRetryBackoff %v is below RetryBackoff %v", o.MaxRetryBackoff, o.RetryBackoff))
	}
	if o.MaxValueSize < 0 {
		errs = append(errs, fmt.Errorf("MaxValueSize %d is negative", o.MaxValueSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}
