package idnumber

import (
	"errors"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) }

func TestValidate(t *testing.T) {
	real := Policy{Now: fixedNow}
	test := Policy{AllowTest: true, Now: fixedNow}
	synth, err := Synthesize(1234)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		policy Policy
		id     string
		want   error
	}{
		// Examples printed in GB 11643-1999.
		{"standard example X", real, "11010519491231002X", nil},
		{"standard example digit", real, "440524188001010014", ErrBirth}, // born 1880: before 1900
		{"valid 1990", real, "110101199003074477", nil},
		{"wrong check", real, "110101199003074478", ErrChecksum},
		{"lower x not normalised", real, "11010519491231002x", ErrSyntax},
		{"too short", real, "11010519491231002", ErrLength},
		{"too long", real, "11010519491231002XX", ErrLength},
		{"letter inside", real, "1101051949123A002X", ErrSyntax},
		{"X not last", real, "X10105194912310021", ErrSyntax},
		{"unknown province", real, "000101199003074470", ErrRegion},
		{"bad month", real, "110101199013074470", ErrBirth},
		{"feb 30", real, "110101199002304470", ErrBirth},
		{"future birth", real, "110101202712014470", ErrBirth},
		{"test id refused", real, synth, ErrTestID},
		{"test id allowed", test, synth, nil},
		{"real id under test policy", test, "11010519491231002X", nil},
		{"empty", real, "", ErrLength},
		{"multibyte 18 bytes", real, "１１０１０５", ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if tt.want == ErrChecksum || tt.want == ErrRegion || tt.want == ErrBirth {
				// Make the check character right so only the intended field is wrong.
				if tt.want != ErrChecksum {
					c, err := CheckChar(id[:17])
					if err != nil {
						t.Fatal(err)
					}
					id = id[:17] + string(c)
				}
			}
			err := tt.policy.Validate(id)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Validate(%q) = %v, want %v", id, err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		" 11010519491231002x ": "11010519491231002X",
		"11010519491231002X":   "11010519491231002X",
		"x":                    "x",
		"":                     "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSynthesize(t *testing.T) {
	p := Policy{AllowTest: true, Now: fixedNow}
	seen := map[string]int{}
	for _, n := range []int{0, 1, 999, 1000, 1001, 123456, 9_999_999} {
		id, err := Synthesize(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(id); err != nil {
			t.Errorf("Synthesize(%d) = %q invalid: %v", n, id, err)
		}
		if !IsTest(id) {
			t.Errorf("Synthesize(%d) = %q is not a test ID", n, id)
		}
		if m, dup := seen[id]; dup {
			t.Errorf("Synthesize(%d) = Synthesize(%d) = %q", n, m, id)
		}
		seen[id] = n
	}
	for _, n := range []int{-1, 10_000_000} {
		if _, err := Synthesize(n); err == nil {
			t.Errorf("Synthesize(%d) succeeded", n)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110101199003074477", "", "99000020000101000X", "x"} {
		f.Add(s)
	}
	p := Policy{AllowTest: true, Now: fixedNow}
	f.Fuzz(func(t *testing.T, s string) {
		err := p.Validate(Normalize(s))
		if err != nil {
			return
		}
		// Anything accepted has the documented shape and a correct check character.
		n := Normalize(s)
		c, cerr := CheckChar(n[:17])
		if cerr != nil || c != n[17] {
			t.Fatalf("accepted %q with wrong check character", n)
		}
	})
}
