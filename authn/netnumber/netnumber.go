// Package netnumber assigns each citizen a 网号 (network number, MPS Order
// No. 173 of 2025): an opaque string of upper-case letters and digits that
// stands for the citizen in the net certificate and, for authorised
// clients, in OIDC claims, instead of any plaintext identity.
//
// A number is a keyed function of the citizen's internal id (itself random,
// never the ID number): the key id, then 20 Crockford base32 characters of
// HMAC-SHA-256(key, domain || citizen id). It is computed once, at the
// first verified sign-in, and stored with the citizen; the store never
// changes it afterwards. Rotating the key (a new key id) therefore changes
// only the numbers of citizens assigned after the rotation: issued numbers
// stay as they are, and the key id inside a number says which key made it.
// Keying the random internal id rather than the ID number means that even
// a leaked key cannot be tested against ID numbers (the ID-number space is
// small enough to enumerate).
package netnumber

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"

	"github.com/trustid/trustid/internal/store"
)

// Citizens is the part of the citizen store the assigner uses
// (store.CitizenStore satisfies it).
type Citizens interface {
	Get(ctx context.Context, id string) (*store.Citizen, error)
	Update(ctx context.Context, id string, fn func(*store.Citizen) error) (*store.Citizen, error)
}

// Config holds the assigner's key and store.
type Config struct {
	Citizens Citizens
	// KeyID names Key: 1 to 4 upper-case letters or digits, written at the
	// start of every number the key makes. Change it whenever Key changes.
	KeyID string
	// Key is the operator's HMAC key, at least 32 bytes.
	Key []byte
}

// Assigner assigns and reads network numbers. Safe for concurrent use.
type Assigner struct{ cfg Config }

var keyIDPattern = regexp.MustCompile(`^[0-9A-Z]{1,4}$`)

// New checks cfg.
func New(cfg Config) (*Assigner, error) {
	var errs []error
	if cfg.Citizens == nil {
		errs = append(errs, errors.New("Citizens is nil"))
	}
	if !keyIDPattern.MatchString(cfg.KeyID) {
		errs = append(errs, fmt.Errorf("KeyID %q must be 1-4 upper-case letters or digits", cfg.KeyID))
	}
	if len(cfg.Key) < 32 {
		errs = append(errs, errors.New("Key must be at least 32 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("netnumber: %w", err)
	}
	return &Assigner{cfg: cfg}, nil
}

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U, so a number read aloud or copied by hand is not
// misread.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// bodyLen is the number of base32 characters after the key id (100 bits).
const bodyLen = 20

// Derive is the number the current key gives citizenID.
func (a *Assigner) Derive(citizenID string) string {
	m := hmac.New(sha256.New, a.cfg.Key)
	m.Write([]byte("trustid/netnumber\x00"))
	m.Write([]byte(citizenID))
	return a.cfg.KeyID + crockford.EncodeToString(m.Sum(nil))[:bodyLen]
}

// valid matches a network number: a key id and the body.
var valid = regexp.MustCompile(`^[0-9A-Z]{1,4}[0-9A-HJKMNP-TV-Z]{20}$`)

// Valid says whether s has the form of a network number (for input checks
// before a lookup).
func Valid(s string) bool { return len(s) <= 24 && valid.MatchString(s) }

// Ensure returns the citizen's network number, assigning it first if the
// citizen has none. Concurrent calls agree: the number is a function of
// the citizen and the key, and the store keeps the first one written.
func (a *Assigner) Ensure(ctx context.Context, citizenID string) (string, error) {
	c, err := a.cfg.Citizens.Get(ctx, citizenID)
	if err != nil {
		return "", fmt.Errorf("netnumber: citizen: %w", err)
	}
	if c.NetworkNumber != "" {
		return c.NetworkNumber, nil
	}
	c, err = a.cfg.Citizens.Update(ctx, citizenID, func(c *store.Citizen) error {
		if c.NetworkNumber == "" {
			c.NetworkNumber = a.Derive(citizenID)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("netnumber: assign: %w", err)
	}
	return c.NetworkNumber, nil
}
