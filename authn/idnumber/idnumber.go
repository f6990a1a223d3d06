// Package idnumber validates citizen ID numbers: the 18-character resident
// identity number of the People's Republic of China (GB 11643-1999) with its
// ISO 7064 MOD 11-2 check character, and an opt-in test format for data sets
// (such as LFW) whose people have no real ID number.
//
// Layout of a PRC resident ID number:
//
//	RRRRRR YYYYMMDD SSS C
//	  |       |      |  +- check character 0-9 or X (ISO 7064 MOD 11-2)
//	  |       |      +---- sequence (odd for men, even for women)
//	  |       +----------- date of birth
//	  +------------------- administrative region code (first two digits:
//	                       province, 11-82)
//
// Test format: the same layout and check character, but a region code that
// starts with "99", which no province uses, so a test ID can never collide
// with a real one. Test IDs are accepted only when the Policy allows them;
// Synthesize makes them from a sequence number.
package idnumber

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Length is the number of characters of a resident ID number.
const Length = 18

// TestRegionPrefix starts the region code of every test ID number.
const TestRegionPrefix = "99"

// Sentinel errors. Validate wraps exactly one of them.
var (
	ErrLength   = errors.New("idnumber: not 18 characters")
	ErrSyntax   = errors.New("idnumber: not 17 digits and a check character")
	ErrRegion   = errors.New("idnumber: unknown region code")
	ErrBirth    = errors.New("idnumber: invalid date of birth")
	ErrChecksum = errors.New("idnumber: check character does not match")
	// ErrTestID: a test-format ID number where the policy does not allow them.
	ErrTestID = errors.New("idnumber: test ID number not allowed")
)

// Policy says which ID numbers are acceptable. The zero value accepts real
// PRC resident ID numbers only.
type Policy struct {
	// AllowTest also accepts test-format numbers (region code "99....").
	AllowTest bool
	// Now bounds the date of birth (not in the future); default time.Now.
	Now func() time.Time
}

// weights[i] = 2^(17-i) mod 11 (ISO 7064 MOD 11-2).
var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// checkChars maps (sum mod 11) to the check character.
const checkChars = "10X98765432"

// provinces are the first two digits of region codes in use (GB/T 2260),
// including Taiwan (71), Hong Kong (81) and Macao (82) residence permits.
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true,
}

// Normalize trims spaces and upper-cases a trailing x, the only variation
// people type. It does not validate.
func Normalize(s string) string {
	s = strings.TrimSpace(s)
	if n := len(s); n == Length && s[n-1] == 'x' {
		s = s[:n-1] + "X"
	}
	return s
}

// CheckChar computes the check character of the first 17 digits.
func CheckChar(first17 string) (byte, error) {
	if len(first17) != Length-1 {
		return 0, ErrLength
	}
	sum := 0
	for i := 0; i < Length-1; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, ErrSyntax
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11], nil
}

// Validate checks a normalised ID number (see Normalize) against the policy.
// The error wraps one of the sentinels; its text never contains the number.
func (p Policy) Validate(id string) error {
	if len(id) != Length {
		return ErrLength
	}
	want, err := CheckChar(id[:Length-1])
	if err != nil {
		return err
	}
	last := id[Length-1]
	if (last < '0' || last > '9') && last != 'X' {
		return ErrSyntax
	}
	test := strings.HasPrefix(id, TestRegionPrefix)
	switch {
	case test && !p.AllowTest:
		return ErrTestID
	case !test && !provinces[id[:2]]:
		return ErrRegion
	}
	if err := p.checkBirth(id[6:14]); err != nil {
		return err
	}
	if last != want {
		return ErrChecksum
	}
	return nil
}

func (p Policy) checkBirth(s string) error {
	d, err := time.Parse("20060102", s)
	if err != nil || d.Year() < 1900 {
		return ErrBirth
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if d.After(now()) {
		return ErrBirth
	}
	return nil
}

// BirthDate is the date of birth written in an ID number (characters
// 7-14, YYYYMMDD), false when id holds no valid one.
func BirthDate(id string) (time.Time, bool) {
	id = Normalize(id)
	if len(id) != Length {
		return time.Time{}, false
	}
	d, err := time.Parse("20060102", id[6:14])
	if err != nil || d.Year() < 1900 {
		return time.Time{}, false
	}
	return d, true
}

// AgeAt is the age in whole years at now of the holder of id, false when
// id holds no valid date of birth.
func AgeAt(id string, now time.Time) (int, bool) {
	b, ok := BirthDate(id)
	if !ok {
		return 0, false
	}
	now = now.UTC()
	age := now.Year() - b.Year()
	if now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day()) {
		age--
	}
	return age, true
}

// IsTest reports whether id has the test format's region prefix.
func IsTest(id string) bool { return strings.HasPrefix(id, TestRegionPrefix) }

// Synthesize returns the n-th test ID number (0 <= n < 10^7): region
// "99" + four digits, a fixed date of birth 2000-01-01, three sequence digits
// and the check character. Distinct n give distinct numbers.
func Synthesize(n int) (string, error) {
	if n < 0 || n >= 10_000_000 {
		return "", fmt.Errorf("idnumber: synthesize: %d out of range [0, 10^7)", n)
	}
	first := fmt.Sprintf("%s%04d20000101%03d", TestRegionPrefix, n/1000, n%1000)
	c, err := CheckChar(first)
	if err != nil {
		return "", err
	}
	return first + string(c), nil
}
