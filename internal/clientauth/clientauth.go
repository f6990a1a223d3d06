// Package clientauth owns OAuth client authentication by client secret
// (RFC 6749 section 2.3.1): the keyed hash a secret is stored as, the
// constant-time check of a presented secret against a client's current hash
// and, during a rotation's grace period, its previous one, and the one
// place where failures are reported. The token endpoint (through the fosite
// hasher in oidc and its client adapter in oidc/storage), the certificate
// verifier API and the identity API all authenticate clients with it.
//
// # Stored hash (unchanged since the first release)
//
// A secret is stored as HMAC-SHA256(key, secret), 32 bytes, where key is
// the provider's "client-secret" key (oidc derives it from its master
// secret). Client secrets are 32 random bytes issued by the server, so a
// slow password hash would add latency to every token request without
// adding security; the key keeps a leaked hash table useless.
package clientauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// ErrInvalidCredentials is returned for an unknown client, a public client
// (it has no secret) or a wrong secret; callers answer all three alike.
var ErrInvalidCredentials = errors.New("clientauth: invalid client credentials")

// ErrMalformed is returned for a client id or secret that is not valid
// UTF-8 (RFC 6749 appendix B: they are form-encoded UTF-8): a malformed
// request (400 invalid_request), refused before any store is read.
var ErrMalformed = errors.New("clientauth: client credentials are not valid UTF-8")

// ErrLimited is matched (errors.Is) by a *LimitedError.
var ErrLimited = errors.New("clientauth: too many failed client authentications")

// LimitedError refuses an authentication, whatever the credentials, from an
// address or for a client with too many recent failures. Its answer is 429
// rate_limited with Retry-After (httperr.Answerer).
type LimitedError struct {
	RetryAfter time.Duration // when the next attempt may succeed, at least 1s
	Scope      string        // "address" or "client": which limit refused
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("%s (%s limit, retry after %s)", ErrLimited, e.Scope, e.RetryAfter)
}

// Is makes errors.Is(err, ErrLimited) true.
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// HTTPError implements httperr.Answerer: 429 rate_limited with Retry-After.
func (e *LimitedError) HTTPError() *httperr.Error { return httperr.RateLimited(e.RetryAfter) }

// MinKeySize is the shortest accepted hash key.
const MinKeySize = 32

// Limits bound failed client authentications (RFC 6749 section 10.10:
// the authorization server should prevent guessing of credentials). A
// zero field takes its default; a negative count disables that limit.
//
//   - PerAddress failures from one network address within Window (default
//     30 per minute) refuse every client authentication from that address,
//     a correct secret included, until the window has room again: a
//     guesser's eventual right answer must not get through.
//   - PerClient failures for one client id from any address within Window
//     (default 100 per minute) refuse that client from addresses where it
//     did not authenticate within KnownFor (default 24h). A stranger who
//     knows a client id therefore cannot lock the client out of the
//     addresses it works from, while a distributed guesser is still stopped.
type Limits struct {
	PerAddress int
	PerClient  int
	Window     time.Duration
	KnownFor   time.Duration
}

func (l *Limits) defaults() {
	if l.PerAddress == 0 {
		l.PerAddress = 30
	}
	if l.PerClient == 0 {
		l.PerClient = 100
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	if l.KnownFor <= 0 {
		l.KnownFor = 24 * time.Hour
	}
}

// Config holds an Authenticator's key and dependencies.
type Config struct {
	Key    []byte           // HMAC key, at least MinKeySize bytes (required)
	Now    func() time.Time // decides whether a rotated secret is still valid; time.Now when nil
	Logger *slog.Logger     // receives failures; a discarding logger when nil
	// Ephemeral keeps the failure windows (Allow) and the known addresses
	// shared by every node; nil disables Limits.
	Ephemeral ephemeral.Store
	Limits    Limits
}

// ClientGetter reads a client by id (store.ClientStore satisfies it).
type ClientGetter interface {
	Get(ctx context.Context, id string) (*store.Client, error)
}

// Authenticator hashes and checks client secrets and limits failures. It
// is safe for concurrent use.
type Authenticator struct {
	key    []byte
	now    func() time.Time
	log    *slog.Logger
	eph    ephemeral.Store
	limits Limits

	macs sync.Pool // of hash.Hash: HMAC-SHA256 under key, reset (see Hash)

	mu    sync.Mutex
	known map[string]time.Time // client\x00addr -> when this node last recorded it as known
	addrs map[string]addrSeen  // address -> what this node last saw of its limit
}

// addrSeen is what a node remembers of an address's limit (see clearHere).
type addrSeen struct {
	clear   time.Time // when the shared limit was last read and found clear
	suspect time.Time // when this node last saw a failure from the address
}

// addrRecheck is how long a node trusts a clear address limit it read,
// while it has seen no failure from that address within the window.
const addrRecheck = 250 * time.Millisecond

// New checks cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("clientauth: key must be at least %d bytes", MinKeySize)
	}
	cfg.Limits.defaults()
	a := &Authenticator{key: append([]byte(nil), cfg.Key...), now: cfg.Now, log: cfg.Logger,
		eph: cfg.Ephemeral, limits: cfg.Limits, known: map[string]time.Time{}, addrs: map[string]addrSeen{}}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Hash returns the stored form of secret: HMAC-SHA256 under the key.
// Every client authentication computes one, so the HMACs are reused
// (pooled): a reset HMAC starts from its saved keyed state instead of
// hashing the key's pads again and allocating two SHA-256 states.
func (a *Authenticator) Hash(secret []byte) []byte {
	m, _ := a.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, a.key)
	}
	m.Write(secret)
	sum := m.Sum(make([]byte, 0, sha256.Size))
	m.Reset()
	a.macs.Put(m)
	return sum
}

// Match reports, in constant time, whether secret hashes to hash. An empty
// hash (a public client's) matches nothing.
func (a *Authenticator) Match(hash, secret []byte) bool {
	return len(hash) != 0 && hmac.Equal(a.Hash(secret), hash)
}

// RotatedHashes returns the hash of c's previous secret while its rotation
// grace period lasts at now, else nil.
func RotatedHashes(c *store.Client, now time.Time) [][]byte {
	if len(c.SecretHashOld) == 0 || !now.Before(c.SecretOldExpiresAt) {
		return nil
	}
	return [][]byte{c.SecretHashOld}
}

// Verify checks secret against c's current secret and, during a rotation's
// grace period, its previous one. It returns ErrInvalidCredentials (and
// reports the failure from addr) for a public client or a wrong secret.
func (a *Authenticator) Verify(ctx context.Context, c *store.Client, secret []byte, addr string) error {
	if c.Public {
		a.Failed(ctx, c.ID, addr, "public client presented a secret")
		return ErrInvalidCredentials
	}
	ok := a.Match(c.SecretHash, secret)
	for _, h := range RotatedHashes(c, a.now()) {
		// Both hashes are always compared, so timing does not tell which matched.
		ok = a.Match(h, secret) || ok
	}
	if !ok {
		a.Failed(ctx, c.ID, addr, "wrong secret")
		return ErrInvalidCredentials
	}
	return nil
}

// Authenticate authenticates client id by secret, presented from network
// address addr. It returns ErrMalformed for credentials that are not UTF-8
// and a *LimitedError (ErrLimited) while the address or client is limited,
// both before reading the store; ErrInvalidCredentials for an unknown
// client or a wrong secret; any other store error wrapped, for the caller
// to answer as a fault, not a refusal.
func (a *Authenticator) Authenticate(ctx context.Context, clients ClientGetter, id, secret, addr string) (*store.Client, error) {
	if err := a.Precheck(ctx, id, secret, addr); err != nil {
		return nil, err
	}
	if id == "" || secret == "" {
		a.Failed(ctx, id, addr, "missing client id or secret")
		return nil, ErrInvalidCredentials
	}
	c, err := clients.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.Failed(ctx, id, addr, "unknown client")
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("clientauth: read client %s: %w", id, err)
	}
	if err := a.Verify(ctx, c, []byte(secret), addr); err != nil {
		return nil, err
	}
	a.Succeeded(ctx, c.ID, addr)
	return c, nil
}

// AuthenticateBasic authenticates the client of r's HTTP Basic credentials
// (client_secret_basic) from r's address. A request without them is
// ErrInvalidCredentials.
func (a *Authenticator) AuthenticateBasic(r *http.Request, clients ClientGetter) (*store.Client, error) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return nil, ErrInvalidCredentials
	}
	return a.Authenticate(r.Context(), clients, id, secret, Address(r))
}

// Address is the network address failures of r are counted under: the
// host of r.RemoteAddr.
func Address(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// Precheck runs what comes before any store read: credentials that are not
// UTF-8 are ErrMalformed (and count as a failure of the address), and a
// limited address or client is a *LimitedError. Surfaces that check
// credentials elsewhere (fosite's client authentication) call it first,
// then Failed or Succeeded.
func (a *Authenticator) Precheck(ctx context.Context, id, secret, addr string) error {
	if !utf8.ValidString(id) || !utf8.ValidString(secret) {
		a.Failed(ctx, "", addr, "client id or secret is not UTF-8")
		return ErrMalformed
	}
	return a.Check(ctx, id, addr)
}

// Check returns a *LimitedError while addr, or client id from an address
// it is not known at, has too many recent failures. A fault of the
// ephemeral store is logged and lets the attempt through: the credential
// check itself stays exact, only the limit is missing for that moment.
func (a *Authenticator) Check(ctx context.Context, id, addr string) error {
	if a.eph == nil {
		return nil
	}
	if addr != "" && a.limits.PerAddress > 0 && !a.clearHere(addr) {
		d := a.blocked(ctx, "addr:"+addr)
		if d > 0 {
			a.log.DebugContext(ctx, "client authentication refused: address limited", "client_id", id, "addr", addr)
			return &LimitedError{RetryAfter: d, Scope: "address"}
		}
		a.mu.Lock()
		if len(a.addrs) >= 10_000 {
			clear(a.addrs) // bounded; the ephemeral store keeps the truth
		}
		st := a.addrs[addr]
		st.clear = a.now()
		a.addrs[addr] = st
		a.mu.Unlock()
	}
	if id != "" && a.limits.PerClient > 0 && !a.knownHere(id, addr) {
		if d := a.blocked(ctx, "client:"+id); d > 0 && !a.isKnown(ctx, id, addr) {
			a.log.DebugContext(ctx, "client authentication refused: client limited", "client_id", id, "addr", addr)
			return &LimitedError{RetryAfter: d, Scope: "client"}
		}
	}
	return nil
}

// Failed reports a failed client authentication from addr: logged with the
// client id, the address and the reason, never the secret, and counted
// against the address's and the client's limits. It is the one place every
// surface reports failures to.
func (a *Authenticator) Failed(ctx context.Context, clientID, addr, reason string) {
	a.log.WarnContext(ctx, "client authentication failed", "client_id", clientID, "addr", addr, "reason", reason)
	if a.eph == nil {
		return
	}
	if addr != "" && a.limits.PerAddress > 0 {
		a.mu.Lock()
		st := a.addrs[addr]
		st.suspect = a.now()
		a.addrs[addr] = st
		a.mu.Unlock()
		a.count(ctx, "addr:"+addr, a.limits.PerAddress, "addr", addr)
	}
	if clientID != "" && a.limits.PerClient > 0 {
		a.count(ctx, "client:"+clientID, a.limits.PerClient, "client_id", clientID)
	}
}

// Succeeded records that clientID authenticated from addr, which keeps
// the address usable for the client while the client is limited.
func (a *Authenticator) Succeeded(ctx context.Context, clientID, addr string) {
	if a.eph == nil || addr == "" || a.limits.PerClient <= 0 {
		return
	}
	k := clientID + "\x00" + addr
	now := a.now()
	a.mu.Lock()
	last, seen := a.known[k]
	fresh := seen && now.Sub(last) < a.limits.KnownFor/2
	if !fresh {
		if len(a.known) >= 10_000 {
			clear(a.known) // bounded; the ephemeral store keeps the truth
		}
		a.known[k] = now
	}
	a.mu.Unlock()
	if fresh {
		return
	}
	if err := a.eph.Set(ctx, knownKey(clientID, addr), []byte{1}, a.limits.KnownFor); err != nil {
		a.log.DebugContext(ctx, "clientauth: record known address", "client_id", clientID, "err", err)
		a.mu.Lock()
		delete(a.known, k)
		a.mu.Unlock()
	}
}

const keyPrefix = "clientauth:"

func knownKey(clientID, addr string) string {
	return keyPrefix + "known:" + strconv.Quote(clientID) + ":" + addr
}

// count records one failure under key and, when it exceeds limit within
// the window, blocks key until the window has room again.
func (a *Authenticator) count(ctx context.Context, key string, limit int, attr, value string) {
	ok, retry, err := a.eph.Allow(ctx, keyPrefix+"fail:"+key, limit, a.limits.Window)
	if err != nil {
		a.log.WarnContext(ctx, "clientauth: count failure", attr, value, "err", err)
		return
	}
	if ok {
		return
	}
	retry = max(retry, time.Second)
	until := strconv.FormatInt(a.now().Add(retry).UnixMilli(), 10)
	if err := a.eph.Set(ctx, keyPrefix+"block:"+key, []byte(until), retry); err != nil {
		a.log.WarnContext(ctx, "clientauth: record limit", attr, value, "err", err)
		return
	}
	a.log.WarnContext(ctx, "client authentication limited: too many failures", attr, value,
		"limit", limit, "window", a.limits.Window, "retry_after", retry)
}

// blocked returns how long key stays blocked, or 0.
func (a *Authenticator) blocked(ctx context.Context, key string) time.Duration {
	b, err := a.eph.Get(ctx, keyPrefix+"block:"+key)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return 0
	}
	if err != nil {
		a.log.WarnContext(ctx, "clientauth: read limit", "err", err)
		return 0
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	d := time.UnixMilli(ms).Sub(a.now())
	if err != nil || d < time.Second {
		d = time.Second // the key still exists: blocked for its last moments
	}
	return d
}

// clearHere reports whether this node read addr's limit clear less than
// addrRecheck ago and has seen no failure from addr within the window: then
// the shared limit is not read again. An address that fails here is read
// on every attempt for a window, so the limit holds for a guesser; what a
// guesser spreading over N nodes gains is at most one unchecked attempt per
// node per window (its first there). A busy client with no failures reads
// the limit a few times a second instead of on every request.
func (a *Authenticator) clearHere(addr string) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.addrs[addr]
	return ok && now.Sub(st.clear) < addrRecheck && (st.suspect.IsZero() || now.Sub(st.suspect) >= a.limits.Window)
}

// knownHere reports whether this node saw clientID authenticate from addr
// within half of KnownFor (Succeeded then wrote the shared marker): a
// client limit never applies at a known address, so the hot path of a
// client that keeps authenticating from its own address reads nothing for
// the client limit (only the address limit is read).
func (a *Authenticator) knownHere(clientID, addr string) bool {
	if addr == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	last, ok := a.known[clientID+"\x00"+addr]
	return ok && a.now().Sub(last) < a.limits.KnownFor/2
}

func (a *Authenticator) isKnown(ctx context.Context, clientID, addr string) bool {
	if addr == "" {
		return false
	}
	_, err := a.eph.Get(ctx, knownKey(clientID, addr))
	return err == nil
}
