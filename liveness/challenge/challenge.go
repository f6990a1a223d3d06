// Package challenge issues and consumes the liveness challenges: four digits
// a citizen reads aloud on camera (KindDigits) or a random sequence of two or
// three facial actions (KindActions, liveness/action), and keeps the per-subject and per-address
// rate limits and the lockout after repeated failures (lockout.go: keyed by
// subject and device so that a stranger cannot lock a citizen out).
//
// A challenge is bound to the login session and the claimed subject, lives
// for a short TTL and is single use: the first verification attempt consumes
// it, pass or fail. Only a keyed hash (HMAC-SHA256 with the server secret) of
// the digits is kept in the ephemeral store, so a reader of Redis without the
// secret learns neither the digits nor the subjects; the server recovers the
// expected digits on consumption by testing the admissible codes against the
// hash (fewer than 10^4 HMACs, a few milliseconds; 80 for an action
// sequence). Both kinds share the TTL, the single use, the binding and the
// lockout.
//
// Refusals carry a distinct internal reason (ErrExpired, ErrReplayed,
// ErrWrongSession, ...) for logs and metrics; all of them match ErrRefused,
// which is the only thing a client should learn.
package challenge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/liveness/action"
)

// Kind is what a challenge asks of the citizen.
type Kind string

// The kinds. Never renamed: they are stored with the challenge.
const (
	KindDigits  Kind = "digits"  // read four digits aloud
	KindActions Kind = "actions" // do two or three facial actions in order
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindDigits || k == KindActions }

// Length is the number of digits in a challenge.
const Length = 4

// ErrRefused matches every refusal of a challenge; it is what the client sees.
var ErrRefused = errors.New("challenge: refused")

// ErrRateLimited is returned by Issue when a subject or address asks too often.
var ErrRateLimited = errors.New("challenge: rate limited")

// ErrLocked is returned while a subject or address is locked out after
// repeated failures.
var ErrLocked = errors.New("challenge: locked out")

// Refusal is an internal reason for refusing a challenge. Every Refusal
// matches ErrRefused with errors.Is.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "challenge: refused: " + r.Reason }

// Unwrap makes every refusal match ErrRefused.
func (r *Refusal) Unwrap() error { return ErrRefused }

// Internal refusal reasons (stable strings, safe to log).
var (
	ErrUnknown      = &Refusal{"unknown"}       // never issued (or long gone)
	ErrExpired      = &Refusal{"expired"}       // issued, TTL passed, never used
	ErrReplayed     = &Refusal{"replayed"}      // already consumed by an earlier attempt
	ErrWrongSession = &Refusal{"wrong_session"} // issued to another login session
	ErrWrongSubject = &Refusal{"wrong_subject"} // issued for another claimed identity
)

// Config holds the live dependencies and the policy of a Manager.
type Config struct {
	Store  ephemeral.Store // required
	Secret []byte          // required, at least 32 bytes; keys the hashes
	Rand   io.Reader       // default crypto/rand.Reader
	Now    func() time.Time
	Logger *slog.Logger

	TTL time.Duration // lifetime of an issued challenge; default 2 min

	// Issue limits per subject and per client address.
	SubjectIssueLimit int           // default 10
	AddressIssueLimit int           // default 30
	IssueWindow       time.Duration // default 10 min
	// Lockout after failed verifications (see lockout.go): MaxFailures in
	// FailureWindow from one device (or, without a device id, one address)
	// for one subject lock that pair for LockoutDuration, doubling with
	// every further lockout within StrikeMemory up to MaxLockout.
	MaxFailures     int           // default 5
	FailureWindow   time.Duration // default 3 min
	LockoutDuration time.Duration // first lockout of a pair; default 1 min
	MaxLockout      time.Duration // default 1 h
	StrikeMemory    time.Duration // default 24 h
	// Distributed guessing: SubjectMaxFailures from devices not known for
	// the subject within SubjectFailureWindow lock the subject for unknown
	// devices only (its known devices and passkeys still work) for
	// SubjectLockout; AddressMaxFailures from one address within
	// FailureWindow lock that address for unknown devices for
	// LockoutDuration (high, so a NAT of citizens is not a weapon).
	SubjectMaxFailures   int           // default 20
	SubjectFailureWindow time.Duration // default 1 h
	SubjectLockout       time.Duration // default 15 min
	AddressMaxFailures   int           // default 50
	ConsumedMemory       time.Duration // how long a consumed id is remembered as replayed; default 30 min
	KeyPrefix            string        // default "liveness:"

	// FixedDigits, when set, replaces the random digits of every challenge.
	// It exists only for the browser test harness (a pre-recorded clip must
	// say known digits); cmd sets it only in test mode, which the
	// configuration refuses whenever a configuration file is used. It may
	// be shorter than Length: the honest genuine test clips are real GRID
	// speakers saying one digit each (#17).
	FixedDigits string
	// FixedActions, when set, replaces the random actions of every action
	// challenge ("+"-joined, e.g. "open_mouth+blink"); test mode only, as
	// FixedDigits.
	FixedActions string
}

func (c *Config) defaults() {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TTL == 0 {
		c.TTL = 2 * time.Minute
	}
	if c.SubjectIssueLimit == 0 {
		c.SubjectIssueLimit = 10
	}
	if c.AddressIssueLimit == 0 {
		c.AddressIssueLimit = 30
	}
	if c.IssueWindow == 0 {
		c.IssueWindow = 10 * time.Minute
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = 5
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = 3 * time.Minute
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = time.Minute
	}
	if c.MaxLockout == 0 {
		c.MaxLockout = time.Hour
	}
	if c.StrikeMemory == 0 {
		c.StrikeMemory = 24 * time.Hour
	}
	if c.SubjectMaxFailures == 0 {
		c.SubjectMaxFailures = 20
	}
	if c.SubjectFailureWindow == 0 {
		c.SubjectFailureWindow = time.Hour
	}
	if c.SubjectLockout == 0 {
		c.SubjectLockout = 15 * time.Minute
	}
	if c.AddressMaxFailures == 0 {
		c.AddressMaxFailures = 50
	}
	if c.ConsumedMemory == 0 {
		c.ConsumedMemory = 30 * time.Minute
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "liveness:"
	}
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("challenge: Store is required"))
	}
	if len(c.Secret) < 32 {
		errs = append(errs, errors.New("challenge: Secret must be at least 32 bytes"))
	}
	if c.TTL < 0 || c.IssueWindow < 0 || c.FailureWindow < 0 || c.LockoutDuration < 0 || c.ConsumedMemory < 0 ||
		c.MaxLockout < 0 || c.StrikeMemory < 0 || c.SubjectFailureWindow < 0 || c.SubjectLockout < 0 {
		errs = append(errs, errors.New("challenge: durations must be positive"))
	}
	if c.FixedActions != "" {
		if _, err := action.ParseSequence(c.FixedActions); err != nil {
			errs = append(errs, fmt.Errorf("challenge: FixedActions: %w", err))
		}
	}
	if c.FixedDigits != "" && (len(c.FixedDigits) > Length || strings.Trim(c.FixedDigits, "0123456789") != "") {
		errs = append(errs, fmt.Errorf("challenge: FixedDigits must be 1 to %d digits", Length))
	}
	if c.SubjectIssueLimit < 0 || c.AddressIssueLimit < 0 || c.MaxFailures < 0 || c.SubjectMaxFailures < 0 || c.AddressMaxFailures < 0 {
		errs = append(errs, errors.New("challenge: limits must be positive"))
	}
	return errors.Join(errs...)
}

// Manager issues, consumes and rate-limits challenges. Safe for concurrent use.
type Manager struct {
	cfg Config
}

// New checks cfg, fills defaults and returns a Manager.
func New(cfg Config) (*Manager, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg}
	m.startMemory()
	return m, nil
}

// Issued is a fresh challenge: the id goes with the login session, the
// digits (or actions) are shown to the citizen.
type Issued struct {
	ID        string
	Kind      Kind
	Digits    string          // KindDigits
	Actions   action.Sequence // KindActions
	ExpiresAt time.Time
}

// Challenge is a consumed challenge: what the verifier checks the evidence against.
type Challenge struct {
	ID       string
	Kind     Kind
	Digits   string          // KindDigits
	Actions  action.Sequence // KindActions
	IssuedAt time.Time
}

// record is what the ephemeral store holds for a challenge. No plain digits,
// session ids or subjects.
type record struct {
	Code     []byte    `json:"c"` // HMAC(id, digits)
	Session  []byte    `json:"s"` // HMAC(session)
	Subject  []byte    `json:"u"` // HMAC(subject)
	IssuedAt time.Time `json:"t"`
	// Kind is empty for digits (records written before kinds existed).
	Kind Kind `json:"k,omitempty"`
}

// Issue creates a challenge for the login session sessionID and the claimed
// subject, requested from client address addr (no device id).
func (m *Manager) Issue(ctx context.Context, sessionID, subject, addr string) (Issued, error) {
	return m.IssueFor(ctx, sessionID, subject, Client{Addr: addr})
}

// IssueFor creates a challenge for the login session sessionID and the
// claimed subject, requested by c. It fails with a *RetryError wrapping
// ErrLocked while c is locked out for subject, or ErrRateLimited.
func (m *Manager) IssueFor(ctx context.Context, sessionID, subject string, c Client) (Issued, error) {
	return m.IssueKind(ctx, KindDigits, sessionID, subject, c)
}

// IssueKind is IssueFor for a challenge of the given kind. Both kinds count
// toward the same issue limits and lockout.
func (m *Manager) IssueKind(ctx context.Context, kind Kind, sessionID, subject string, c Client) (Issued, error) {
	if !kind.Valid() {
		return Issued{}, fmt.Errorf("challenge: unknown kind %q", kind)
	}
	addr := c.Addr
	if err := m.Locked(ctx, subject, c); err != nil {
		return Issued{}, err
	}
	for _, l := range []struct {
		key   string
		limit int
	}{
		{m.key("rl:issue:subj:", subject), m.cfg.SubjectIssueLimit},
		{m.key("rl:issue:addr:", addr), m.cfg.AddressIssueLimit},
	} {
		ok, retry, err := m.cfg.Store.Allow(ctx, l.key, l.limit, m.cfg.IssueWindow)
		if err != nil {
			return Issued{}, fmt.Errorf("challenge: rate limit: %w", err)
		}
		if !ok {
			return Issued{}, &RetryError{Err: ErrRateLimited, RetryAfter: retry}
		}
	}
	var (
		digits string
		seq    action.Sequence
		err    error
	)
	if kind == KindActions {
		if seq, err = GenerateActions(m.cfg.Rand); err != nil {
			return Issued{}, err
		}
		if m.cfg.FixedActions != "" {
			seq, _ = action.ParseSequence(m.cfg.FixedActions) // checked by Validate
		}
		digits = seq.String() // what the code hashes
	} else {
		if digits, err = Generate(m.cfg.Rand); err != nil {
			return Issued{}, err
		}
		if m.cfg.FixedDigits != "" {
			digits = m.cfg.FixedDigits
		}
	}
	idb := make([]byte, 18)
	if _, err := io.ReadFull(m.cfg.Rand, idb); err != nil {
		return Issued{}, fmt.Errorf("challenge: random id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(idb)
	now := m.cfg.Now().UTC()
	rec := record{
		Code:     m.mac("code", id, digits),
		Session:  m.mac("session", sessionID),
		Subject:  m.mac("subject", subject),
		IssuedAt: now,
	}
	if kind == KindActions {
		rec.Kind = kind
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return Issued{}, fmt.Errorf("challenge: encode: %w", err)
	}
	if err := m.cfg.Store.Set(ctx, m.cfg.KeyPrefix+"chal:"+id, val, m.cfg.TTL); err != nil {
		return Issued{}, fmt.Errorf("challenge: store: %w", err)
	}
	// The marker outlives the challenge so that a late attempt is told
	// "expired" rather than "unknown" in the logs.
	if err := m.cfg.Store.Set(ctx, m.cfg.KeyPrefix+"chal-issued:"+id, []byte{1}, m.cfg.TTL+m.cfg.ConsumedMemory); err != nil {
		return Issued{}, fmt.Errorf("challenge: store: %w", err)
	}
	if kind == KindActions {
		return Issued{ID: id, Kind: kind, Actions: seq, ExpiresAt: now.Add(m.cfg.TTL)}, nil
	}
	return Issued{ID: id, Kind: KindDigits, Digits: digits, ExpiresAt: now.Add(m.cfg.TTL)}, nil
}

// Consume takes the challenge id for one verification attempt by sessionID
// and subject. The challenge is gone afterwards whatever the outcome, so the
// caller must not retry with the same id. Refusals match ErrRefused.
func (m *Manager) Consume(ctx context.Context, id, sessionID, subject string) (Challenge, error) {
	val, err := m.cfg.Store.Take(ctx, m.cfg.KeyPrefix+"chal:"+id)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return Challenge{}, m.whyMissing(ctx, id)
	}
	if err != nil {
		return Challenge{}, fmt.Errorf("challenge: take: %w", err)
	}
	if err := m.cfg.Store.Set(ctx, m.cfg.KeyPrefix+"chal-used:"+id, []byte{1}, m.cfg.ConsumedMemory); err != nil {
		m.cfg.Logger.WarnContext(ctx, "challenge: cannot remember consumed id", "err", err)
	}
	var rec record
	if err := json.Unmarshal(val, &rec); err != nil {
		return Challenge{}, fmt.Errorf("challenge: decode: %w", err)
	}
	// A store that failed to expire the key must not extend a challenge's life.
	if !m.cfg.Now().Before(rec.IssuedAt.Add(m.cfg.TTL)) {
		return Challenge{}, ErrExpired
	}
	if !hmac.Equal(rec.Session, m.mac("session", sessionID)) {
		return Challenge{}, ErrWrongSession
	}
	if !hmac.Equal(rec.Subject, m.mac("subject", subject)) {
		return Challenge{}, ErrWrongSubject
	}
	if rec.Kind == KindActions {
		seq, ok := m.recoverActions(id, rec.Code)
		if !ok {
			return Challenge{}, fmt.Errorf("challenge: stored code matches no admissible actions (secret changed?): %w", ErrUnknown)
		}
		return Challenge{ID: id, Kind: KindActions, Actions: seq, IssuedAt: rec.IssuedAt}, nil
	}
	digits, ok := m.recover(id, rec.Code)
	if !ok {
		return Challenge{}, fmt.Errorf("challenge: stored code matches no admissible digits (secret changed?): %w", ErrUnknown)
	}
	return Challenge{ID: id, Kind: KindDigits, Digits: digits, IssuedAt: rec.IssuedAt}, nil
}

func (m *Manager) whyMissing(ctx context.Context, id string) error {
	if _, err := m.cfg.Store.Get(ctx, m.cfg.KeyPrefix+"chal-used:"+id); err == nil {
		return ErrReplayed
	}
	if _, err := m.cfg.Store.Get(ctx, m.cfg.KeyPrefix+"chal-issued:"+id); err == nil {
		return ErrExpired
	}
	return ErrUnknown
}

// recover finds the digits whose keyed hash is code, in constant work per
// candidate (every admissible code is tested).
func (m *Manager) recover(id string, code []byte) (string, bool) {
	if f := m.cfg.FixedDigits; f != "" && hmac.Equal(m.mac("code", id, f), code) {
		return f, true
	}
	found := ""
	h := hmac.New(sha256.New, m.cfg.Secret)
	// Same framing as mac("code", id, digits): the part before the digits
	// is the same for every candidate, framed once.
	prefix := make([]byte, 0, 3*4+len("code")+len(id))
	for _, p := range []string{"code", id} {
		prefix = binary.BigEndian.AppendUint32(prefix, uint32(len(p)))
		prefix = append(prefix, p...)
	}
	prefix = binary.BigEndian.AppendUint32(prefix, Length)
	var buf [Length]byte
	sum := make([]byte, 0, sha256.Size)
	for n := 0; n < 10000; n++ {
		for i, v := Length-1, n; i >= 0; i, v = i-1, v/10 {
			buf[i] = byte('0' + v%10)
		}
		if Weak(string(buf[:])) {
			continue
		}
		h.Reset()
		h.Write(prefix)
		h.Write(buf[:])
		if subtle.ConstantTimeCompare(h.Sum(sum[:0]), code) == 1 {
			found = string(buf[:])
		}
	}
	return found, found != ""
}

// RetryError carries a retry hint with ErrRateLimited or ErrLocked.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter.Round(time.Second))
}

func (e *RetryError) Unwrap() error { return e.Err }

// key names a per-subject or per-address entry without putting the subject
// or address itself into the store.
func (m *Manager) key(kind string, v ...string) string {
	return m.cfg.KeyPrefix + kind + base64.RawURLEncoding.EncodeToString(m.mac(append([]string{kind}, v...)...)[:16])
}

func (m *Manager) mac(parts ...string) []byte {
	h := hmac.New(sha256.New, m.cfg.Secret)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// Generate draws Length uniformly random digits from r, redrawing weak
// patterns (see Weak).
func Generate(r io.Reader) (string, error) {
	var b [2]byte
	for tries := 0; tries < 1000; tries++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("challenge: random digits: %w", err)
		}
		v := int(binary.BigEndian.Uint16(b[:]))
		if v >= 60000 { // rejection sampling keeps the digits uniform
			continue
		}
		d := fmt.Sprintf("%04d", v%10000)
		if !Weak(d) {
			return d, nil
		}
	}
	return "", errors.New("challenge: random source produced only weak codes")
}

// Weak reports whether d is a pattern a person could guess or say without
// reading the screen: all one digit, a digit three or more times, a run up
// or down (1234, 9876, also wrapping: 8901), or two alternating digits (1212).
func Weak(d string) bool {
	if len(d) != Length {
		return true
	}
	var count [10]int
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return true
		}
		count[c-'0']++
		if count[c-'0'] >= 3 {
			return true
		}
	}
	up, down := true, true
	for i := 1; i < len(d); i++ {
		step := (int(d[i]) - int(d[i-1]) + 10) % 10
		up = up && step == 1
		down = down && step == 9
	}
	if up || down {
		return true
	}
	return d[0] == d[2] && d[1] == d[3]
}
