package certs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Attributes a verifier may be given.
const (
	AttrName           = "name"
	AttrIDNumberMasked = "id_number_masked"
	AttrIDNumber       = "id_number"
	AttrLevel          = "assurance_level"
	AttrExpires        = "certificate_expires"
	AttrFaceCheck      = "face_check" // may ask for a counter face check
)

// IsPlaintext says whether attribute a identifies the holder in plaintext:
// such attributes need the holder's consent for the verifier (MPS Order
// No. 173: by default the verifier gets only the result).
func IsPlaintext(a string) bool {
	return a == AttrName || a == AttrIDNumber || a == AttrIDNumberMasked
}

// PlaintextFor lists the plaintext attributes role may receive for any
// purpose, in a stable order (what the holder is asked to allow).
func (p Policy) PlaintextFor(role string) []string {
	var out []string
	for _, a := range []string{AttrName, AttrIDNumberMasked, AttrIDNumber} {
		for _, attrs := range p[role] {
			if has(attrs, a) && !has(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

var knownAttrs = map[string]bool{
	AttrName: true, AttrIDNumberMasked: true, AttrIDNumber: true, AttrLevel: true, AttrExpires: true, AttrFaceCheck: true,
}

// Policy is the disclosure policy: verifier role -> purpose -> the
// attributes released for that purpose. Every verifier also receives its
// own pseudonymous holder id.
type Policy map[string]map[string][]string

// DefaultPolicy is the policy of the design: a hotel gets the name and a
// masked ID number for a check-in; a vehicle office gets more.
func DefaultPolicy() Policy {
	return Policy{
		"hotel": {
			"check_in": {AttrName, AttrIDNumberMasked, AttrFaceCheck},
		},
		"vehicle_office": {
			"vehicle_registration": {AttrName, AttrIDNumber, AttrLevel, AttrExpires, AttrFaceCheck},
			"driving_licence":      {AttrName, AttrIDNumber, AttrLevel, AttrExpires, AttrFaceCheck},
		},
	}
}

// Validate reports unknown attributes and empty entries.
func (p Policy) Validate() error {
	var errs []error
	roles := make([]string, 0, len(p))
	for r := range p {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, role := range roles {
		if role == "" || len(p[role]) == 0 {
			errs = append(errs, fmt.Errorf("role %q has no purposes", role))
		}
		for purpose, attrs := range p[role] {
			if purpose == "" {
				errs = append(errs, fmt.Errorf("role %q has an empty purpose", role))
			}
			for _, a := range attrs {
				if !knownAttrs[a] {
					errs = append(errs, fmt.Errorf("role %q purpose %q: unknown attribute %q", role, purpose, a))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("certs: policy: %w", errors.Join(errs...))
	}
	return nil
}

// allowed returns the attributes role may receive for purpose.
func (p Policy) allowed(role, purpose string) ([]string, error) {
	attrs, ok := p[role][purpose]
	if !ok || role == "" {
		return nil, fmt.Errorf("%w: role %q, purpose %q", ErrPurposeNotAllowed, role, purpose)
	}
	return attrs, nil
}

func has(attrs []string, a string) bool {
	for _, x := range attrs {
		if x == a {
			return true
		}
	}
	return false
}

// MaskIDNumber keeps the first 3 and last 4 characters of an ID number
// (region prefix and check digits) and stars the rest, including the date
// of birth; numbers shorter than 9 keep only the last 2.
func MaskIDNumber(id string) string {
	r := []rune(id)
	keepHead, keepTail := 3, 4
	if len(r) < 9 {
		keepHead, keepTail = 0, min(2, len(r))
	}
	return string(r[:keepHead]) + strings.Repeat("*", len(r)-keepHead-keepTail) + string(r[len(r)-keepTail:])
}
