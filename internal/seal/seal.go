// Package seal owns TrustID's encryption at rest: a Ring of AES-256-GCM keys
// with key ids, so keys rotate without downtime (new ciphertexts use the
// primary key, old ones still open with the key named in their header), and
// keyed hashes for looking up sensitive values (ID numbers). OAuth client
// secrets are hashed and checked by internal/clientauth.
//
// Ciphertext format (version 1):
//
//	version(1)=0x01 | len(kid)(1) | kid | nonce(12) | GCM ciphertext+tag(16)
//
// The header (version, kid) is authenticated as part of the associated data,
// together with caller-supplied context (see AAD) that binds a ciphertext to
// the row and column it was written for, so it cannot be moved to another row.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Version1 is the only ciphertext format version so far.
const Version1 byte = 1

// KeySize is the size of every key of the ring (AES-256, HMAC-SHA256).
const KeySize = 32

const (
	nonceSize = 12
	tagSize   = 16
	maxKID    = 64
)

// Sentinel errors callers may branch on.
var (
	// ErrMalformed: the ciphertext is not in a format this package writes.
	ErrMalformed = errors.New("seal: malformed ciphertext")
	// ErrUnknownKey: the ciphertext names a key id the ring does not hold.
	ErrUnknownKey = errors.New("seal: unknown key id")
	// ErrAuth: the ciphertext, its header or the associated data was altered
	// (or the wrong key/AAD was used).
	ErrAuth = errors.New("seal: message authentication failed")
	// ErrConfig: the ring configuration is invalid.
	ErrConfig = errors.New("seal: invalid configuration")
)

// Config is the configuration-file form of a ring. Keys are base64 (standard
// or URL encoding, padded or not) of 32 random bytes.
type Config struct {
	// Keys maps key id -> base64 key. Old keys stay here until every
	// ciphertext they sealed has been rewritten.
	Keys map[string]string `yaml:"keys" json:"keys"`
	// Primary is the key id new ciphertexts are sealed with.
	Primary string `yaml:"primary" json:"primary"`
	// LookupKey (base64, 32 bytes) keys the lookup hashes. It
	// cannot be rotated without recomputing every stored hash, so it is kept
	// apart from the encryption keys.
	LookupKey string `yaml:"lookup_key" json:"lookup_key"`
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	_, _, err := c.decode()
	return err
}

func (c Config) decode() (map[string][]byte, []byte, error) {
	var errs []error
	keys := make(map[string][]byte, len(c.Keys))
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("no keys"))
	}
	ids := make([]string, 0, len(c.Keys))
	for id := range c.Keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id == "" || len(id) > maxKID {
			errs = append(errs, fmt.Errorf("key id %q: must be 1..%d bytes", id, maxKID))
			continue
		}
		k, err := decodeKey(c.Keys[id])
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", id, err))
			continue
		}
		keys[id] = k
	}
	if c.Primary == "" {
		errs = append(errs, errors.New("no primary key id"))
	} else if _, ok := c.Keys[c.Primary]; !ok {
		errs = append(errs, fmt.Errorf("primary key id %q not among the keys", c.Primary))
	}
	lookup, err := decodeKey(c.LookupKey)
	if err != nil {
		errs = append(errs, fmt.Errorf("lookup key: %w", err))
	}
	for id, k := range keys {
		if lookup != nil && hmac.Equal(k, lookup) {
			errs = append(errs, fmt.Errorf("lookup key must differ from key %q", id))
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return keys, lookup, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("is %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Ring seals and opens values and computes keyed hashes. It is safe for
// concurrent use.
type Ring struct {
	aeads   map[string]cipher.AEAD
	primary string
	lookup  []byte // HMAC key for LookupHash
	rand    io.Reader
}

// Option configures a Ring.
type Option func(*Ring)

// WithRand sets the source of nonces (crypto/rand by default); tests use it
// to make ciphertexts reproducible.
func WithRand(r io.Reader) Option { return func(g *Ring) { g.rand = r } }

// New builds a ring from its configuration.
func New(cfg Config, opts ...Option) (*Ring, error) {
	keys, lookup, err := cfg.decode()
	if err != nil {
		return nil, err
	}
	r := &Ring{aeads: make(map[string]cipher.AEAD, len(keys)), primary: cfg.Primary, lookup: lookup, rand: rand.Reader}
	for id, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", id, err)
		}
		r.aeads[id] = aead
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Primary returns the key id new ciphertexts are sealed with.
func (r *Ring) Primary() string { return r.primary }

// Seal encrypts plaintext under the primary key, binding it to aad.
func (r *Ring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := r.aeads[r.primary]
	kid := r.primary
	hdrLen := 2 + len(kid)
	out := make([]byte, hdrLen+nonceSize, hdrLen+nonceSize+len(plaintext)+tagSize)
	out[0] = Version1
	out[1] = byte(len(kid))
	copy(out[2:], kid)
	nonce := out[hdrLen : hdrLen+nonceSize]
	if _, err := io.ReadFull(r.rand, nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, fullAAD(out[:hdrLen], aad)), nil
}

// Open decrypts a ciphertext made by Seal with any key of the ring. It
// returns ErrMalformed, ErrUnknownKey or ErrAuth (wrapped) on failure.
func (r *Ring) Open(ciphertext, aad []byte) ([]byte, error) {
	kid, hdrLen, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	aead, ok := r.aeads[kid]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	nonce := ciphertext[hdrLen : hdrLen+nonceSize]
	pt, err := aead.Open(nil, nonce, ciphertext[hdrLen+nonceSize:], fullAAD(ciphertext[:hdrLen], aad))
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

// KeyID returns the id of the key that sealed ciphertext, so a re-encryption
// job can find values not yet under the primary key.
func KeyID(ciphertext []byte) (string, error) {
	kid, _, err := parseHeader(ciphertext)
	return kid, err
}

// NeedsRotation reports whether ciphertext was sealed with a key other than
// the primary one (or cannot be parsed).
func (r *Ring) NeedsRotation(ciphertext []byte) bool {
	kid, err := KeyID(ciphertext)
	return err != nil || kid != r.primary
}

func parseHeader(c []byte) (kid string, hdrLen int, err error) {
	if len(c) < 2 {
		return "", 0, fmt.Errorf("%w: too short", ErrMalformed)
	}
	if c[0] != Version1 {
		return "", 0, fmt.Errorf("%w: version %d", ErrMalformed, c[0])
	}
	n := int(c[1])
	if n == 0 || n > maxKID {
		return "", 0, fmt.Errorf("%w: key id length %d", ErrMalformed, n)
	}
	hdrLen = 2 + n
	if len(c) < hdrLen+nonceSize+tagSize {
		return "", 0, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return string(c[2:hdrLen]), hdrLen, nil
}

// fullAAD authenticates the header together with the caller's context; the
// caller's part is length-prefixed so the two cannot be re-split.
func fullAAD(hdr, aad []byte) []byte {
	b := make([]byte, 0, len(hdr)+8+len(aad))
	b = append(b, hdr...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(aad)))
	return append(b, aad...)
}

// AAD builds associated data from parts (for example table, column and row
// id) in an unambiguous length-prefixed encoding: AAD("a","bc") != AAD("ab","c").
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// LookupHash is HMAC-SHA256 under the lookup key of domain and value, for
// indexing sensitive values (ID numbers) without storing them in the clear.
// The domain (e.g. "citizen.id_number") separates hashes of different kinds.
func (r *Ring) LookupHash(domain string, value []byte) []byte {
	return mac(r.lookup, AAD(domain), value)
}

func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// Generate makes a fresh configuration with one key (id "k1") and a lookup
// key, read from rnd (crypto/rand when nil).
func Generate(rnd io.Reader) (Config, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k := make([]byte, KeySize)
	l := make([]byte, KeySize)
	if _, err := io.ReadFull(rnd, k); err != nil {
		return Config{}, fmt.Errorf("seal: generate: %w", err)
	}
	if _, err := io.ReadFull(rnd, l); err != nil {
		return Config{}, fmt.Errorf("seal: generate: %w", err)
	}
	return Config{
		Keys:      map[string]string{"k1": base64.StdEncoding.EncodeToString(k)},
		Primary:   "k1",
		LookupKey: base64.StdEncoding.EncodeToString(l),
	}, nil
}
