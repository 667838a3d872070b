// Package tableauth is the one rule of per-table passwords: how a password
// becomes the verifier the meta state keeps (argon2id), how a node checks
// one presented with a data command, and what of a table's credentials
// leaves a meta server for whom. See docs/security.md, "Per-table
// passwords".
package tableauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/zeppelin-kv/zeppelin/lib/status"
	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// Params are the argon2id costs of new verifiers; the zero Params are
// the defaults below. Verifiers record their parameters, so changing them
// leaves old ones valid.
type Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// The default costs: OWASP's smallest recommended (19 MiB, two passes,
// one lane), about 46 ms on a 2-core machine. A node computes one per
// password it has not yet verified (then caches the success, Cache) and
// per wrong password (bounded per client IP by secret.FailureLimiter), so
// the cost is paid rarely; it makes each guess against a stolen verifier
// as costly.
const (
	DefaultTime      = 2
	DefaultMemoryKiB = 19 * 1024
	DefaultThreads   = 1
	saltLen          = 16
	hashLen          = 32
)

func (p Params) orDefault() Params {
	if p == (Params{}) {
		return Params{Time: DefaultTime, MemoryKiB: DefaultMemoryKiB, Threads: DefaultThreads}
	}
	return p
}

// Bounds a meta server accepts: a password longer than MaxPasswordLen is
// refused (nothing needs one, and argon2 reads all of it), a table holds at
// most MaxCredentials passwords (rotation needs two), and a verifier's
// parameters must lie within what a node can afford to check.
const (
	MaxPasswordLen = 1024
	MaxCredentials = 8
	maxMemoryKiB   = 256 * 1024
	maxTime        = 10
	maxThreads     = 8
)

// New returns the verifier of password, created at now, with a fresh
// salt and the costs p (zero: the defaults).
func New(password []byte, now time.Time, p Params) (*zppb.TableCredential, error) {
	if err := CheckPassword(password); err != nil {
		return nil, err
	}
	p = p.orDefault()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("tableauth: salt: %w", err)
	}
	c := &zppb.TableCredential{
		CreatedUnixMs: now.UnixMilli(), Salt: salt, Time: p.Time, MemoryKib: p.MemoryKiB, Threads: uint32(p.Threads),
		Hash: argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, hashLen),
	}
	c.Id = fingerprint(c)
	if err := Validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckPassword refuses an empty or over-long password; the error never
// holds it.
func CheckPassword(password []byte) error {
	switch {
	case len(password) == 0:
		return status.New(zppb.Code_INVALID_ARGUMENT, "empty table password")
	case len(password) > MaxPasswordLen:
		return status.New(zppb.Code_INVALID_ARGUMENT, "table password of %d bytes is over the %d byte limit", len(password), MaxPasswordLen)
	}
	return nil
}

// fingerprint names a verifier without telling anything of the password:
// it is computed from the salt and hash, themselves secret.
func fingerprint(c *zppb.TableCredential) string {
	h := sha256.New()
	h.Write(c.GetSalt())
	h.Write(c.GetHash())
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// Validate checks a verifier from a request or a log entry: its
// parameters within bounds and its id its fingerprint.
func Validate(c *zppb.TableCredential) error {
	switch {
	case len(c.GetSalt()) < saltLen || len(c.GetSalt()) > 64 || len(c.GetHash()) != hashLen:
		return status.New(zppb.Code_INVALID_ARGUMENT, "table credential %q: salt of %d bytes or hash of %d", c.GetId(), len(c.GetSalt()), len(c.GetHash()))
	case c.GetTime() == 0 || c.GetTime() > maxTime || c.GetMemoryKib() < 8*c.GetThreads() || c.GetMemoryKib() > maxMemoryKiB ||
		c.GetThreads() == 0 || c.GetThreads() > maxThreads:
		return status.New(zppb.Code_INVALID_ARGUMENT, "table credential %q: argon2id parameters out of bounds", c.GetId())
	case c.GetId() != fingerprint(c):
		return status.New(zppb.Code_INVALID_ARGUMENT, "table credential %q: id is not its fingerprint", c.GetId())
	}
	return nil
}

// Matches reports whether password is the one c was made from, computing
// argon2id: tens of milliseconds.
func Matches(c *zppb.TableCredential, password []byte) bool {
	if len(password) == 0 || len(password) > MaxPasswordLen || Validate(c) != nil {
		return false
	}
	got := argon2.IDKey(password, c.Salt, c.Time, c.MemoryKib, uint8(c.Threads), uint32(len(c.Hash)))
	return subtle.ConstantTimeCompare(got, c.Hash) == 1
}

// Protected reports whether t needs a password.
func Protected(t *zppb.Table) bool {
	return t.GetProtected() || len(t.GetCredentials()) > 0
}

// Public is c without its verifier (salt and hash): what the table auth
// list shows.
func Public(c *zppb.TableCredential) *zppb.TableCredential {
	return &zppb.TableCredential{Id: c.GetId(), CreatedUnixMs: c.GetCreatedUnixMs(), Time: c.GetTime(), MemoryKib: c.GetMemoryKib(), Threads: c.GetThreads()}
}

// credentialsField is zppb.Table's credentials.
var credentialsField = (&zppb.Table{}).ProtoReflect().Descriptor().Fields().ByName("credentials")

// Strip returns t as every caller but a node sees it: without credentials,
// protected set. A table without credentials is returned as it is; another
// is a shallow copy sharing t's other messages (t may be a meta state's
// own), so neither may be modified.
func Strip(t *zppb.Table) *zppb.Table {
	if len(t.GetCredentials()) == 0 {
		return t
	}
	out := &zppb.Table{}
	t.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != credentialsField {
			out.ProtoReflect().Set(fd, v)
		}
		return true
	})
	out.Protected = true
	return out
}

// StripAll is Strip of each table, in a new slice.
func StripAll(tables []*zppb.Table) []*zppb.Table {
	out := make([]*zppb.Table, len(tables))
	for i, t := range tables {
		out[i] = Strip(t)
	}
	return out
}

// RequestTable returns the table a data command is on: its message's
// table field ("" for a request without one, e.g. a node-wide INFO or a
// replication request). Read by reflection so that a new data command is
// covered without being listed.
func RequestTable(req *zppb.Request) string {
	oneof := req.ProtoReflect().Descriptor().Oneofs().ByName("cmd")
	fd := req.ProtoReflect().WhichOneof(oneof)
	if fd == nil || fd.Message() == nil {
		return ""
	}
	m := req.ProtoReflect().Get(fd).Message()
	tf := m.Descriptor().Fields().ByName("table")
	if tf == nil || tf.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(tf).String()
}

// maxCached bounds the verified passwords a Cache remembers; past it, it
// starts again empty (the next request of each client pays one argon2id).
const maxCached = 1 << 16

// Cache remembers the passwords a node verified, so that a password is
// checked with argon2id once, and then with one SHA-256 per request (the
// native protocol presents it with every request). An entry is the
// SHA-256 of a verifier's hash and the password: a credential removed
// from the table is no longer looked up, so its entries open nothing. Safe
// for concurrent use.
type Cache struct {
	mu sync.RWMutex
	ok map[[32]byte]struct{}
}

// Check reports whether password is one of creds' passwords already
// verified: a miss (false) leaves it to Verify, which callers rate-limit
// per client.
func (c *Cache) Check(creds []*zppb.TableCredential, password []byte) bool {
	if len(password) == 0 {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, cr := range creds {
		if _, hit := c.ok[cacheKey(cr, password)]; hit {
			return true
		}
	}
	return false
}

// Verify is Check after a miss: it computes argon2id against each of
// creds and remembers a success.
func (c *Cache) Verify(creds []*zppb.TableCredential, password []byte) bool {
	for _, cr := range creds {
		if Matches(cr, password) {
			c.mu.Lock()
			if c.ok == nil || len(c.ok) >= maxCached {
				c.ok = make(map[[32]byte]struct{})
			}
			c.ok[cacheKey(cr, password)] = struct{}{}
			c.mu.Unlock()
			return true
		}
	}
	return false
}

func cacheKey(c *zppb.TableCredential, password []byte) [32]byte {
	h := sha256.New()
	h.Write(c.GetHash())
	h.Write([]byte{0})
	h.Write(password)
	var k [32]byte
	h.Sum(k[:0])
	return k
}
