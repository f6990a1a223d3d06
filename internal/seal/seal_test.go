package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize)) }

func testRing(t testing.TB, primary string, ids ...string) *Ring {
	t.Helper()
	keys := map[string]string{}
	for i, id := range ids {
		keys[id] = key(byte(i + 1))
	}
	r, err := New(Config{Keys: keys, Primary: primary, LookupKey: key(0xEE)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	r := testRing(t, "k1", "k1")
	tests := []struct {
		name string
		pt   []byte
		aad  []byte
	}{
		{"empty", nil, nil},
		{"id number", []byte("110101199003077777"), AAD("citizens", "id_number", "c1")},
		{"large", bytes.Repeat([]byte{7}, 2048), AAD("templates", "vector", "t1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := r.Seal(tc.pt, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.pt) > 0 && bytes.Contains(ct, tc.pt) {
				t.Fatal("ciphertext contains plaintext")
			}
			if kid, _ := KeyID(ct); kid != "k1" {
				t.Fatalf("KeyID = %q", kid)
			}
			got, err := r.Open(ct, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Fatalf("got %x want %x", got, tc.pt)
			}
			ct2, _ := r.Seal(tc.pt, tc.aad)
			if bytes.Equal(ct, ct2) {
				t.Fatal("two seals of one value are equal: nonce reused")
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	r := testRing(t, "k1", "k1")
	aad := AAD("citizens", "id_number", "c1")
	ct, err := r.Seal([]byte("secret value"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	other := testRing(t, "k1", "x", "k1") // k1 is a different key here
	tests := []struct {
		name string
		ring *Ring
		ct   []byte
		aad  []byte
		want error
	}{
		{"wrong row", r, ct, AAD("citizens", "id_number", "c2"), ErrAuth},
		{"wrong column", r, ct, AAD("citizens", "name", "c1"), ErrAuth},
		{"no aad", r, ct, nil, ErrAuth},
		{"tampered body", r, flip(len(ct) - 20), aad, ErrAuth},
		{"tampered tag", r, flip(len(ct) - 1), aad, ErrAuth},
		{"tampered nonce", r, flip(5), aad, ErrAuth},
		{"tampered kid", r, flip(3), aad, ErrUnknownKey},
		{"bad version", r, flip(0), aad, ErrMalformed},
		{"truncated", r, ct[:len(ct)-17], aad, ErrMalformed},
		{"empty", r, nil, aad, ErrMalformed},
		{"wrong key same id", other, ct, aad, ErrAuth},
		{"unknown kid", testRing(t, "k9", "k9"), ct, aad, ErrUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.ring.Open(tc.ct, tc.aad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v (pt %q)", err, tc.want, pt)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := testRing(t, "2025", "2025")
	aad := AAD("signing_keys", "private", "kid1")
	ct, err := old.Seal([]byte("pkcs8"), aad)
	if err != nil {
		t.Fatal(err)
	}
	// New ring: a new primary key, the old key kept for reading.
	rotated := testRing(t, "2026", "2025", "2026")
	if !rotated.NeedsRotation(ct) {
		t.Fatal("old ciphertext should need rotation")
	}
	pt, err := rotated.Open(ct, aad)
	if err != nil || string(pt) != "pkcs8" {
		t.Fatalf("open old under rotated ring: %q %v", pt, err)
	}
	ct2, err := rotated.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := KeyID(ct2); kid != "2026" {
		t.Fatalf("new ciphertext kid = %q, want 2026", kid)
	}
	if rotated.NeedsRotation(ct2) {
		t.Fatal("new ciphertext should not need rotation")
	}
	if _, err := old.Open(ct2, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old ring opening new ciphertext: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Keys: map[string]string{"a": key(1)}, Primary: "a", LookupKey: key(2)}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{"good", good, nil},
		{"raw url base64", Config{Keys: map[string]string{"a": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))}, Primary: "a", LookupKey: key(2)}, nil},
		{"empty", Config{}, []string{"no keys", "no primary", "lookup key"}},
		{"short key", Config{Keys: map[string]string{"a": base64.StdEncoding.EncodeToString([]byte("short"))}, Primary: "a", LookupKey: key(2)}, []string{`key "a"`}},
		{"not base64", Config{Keys: map[string]string{"a": "!!!"}, Primary: "a", LookupKey: key(2)}, []string{"not base64"}},
		{"primary missing", Config{Keys: map[string]string{"a": key(1)}, Primary: "b", LookupKey: key(2)}, []string{"primary key id"}},
		{"lookup equals key", Config{Keys: map[string]string{"a": key(1)}, Primary: "a", LookupKey: key(1)}, []string{"must differ"}},
		{"long kid", Config{Keys: map[string]string{strings.Repeat("x", 65): key(1)}, Primary: strings.Repeat("x", 65), LookupKey: key(2)}, []string{"key id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(tc.cfg); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLookupHash(t *testing.T) {
	r := testRing(t, "k1", "k1")
	a := r.LookupHash("citizen.id_number", []byte("110101199003077777"))
	if len(a) != 32 {
		t.Fatalf("len %d", len(a))
	}
	if !bytes.Equal(a, r.LookupHash("citizen.id_number", []byte("110101199003077777"))) {
		t.Fatal("not deterministic")
	}
	if bytes.Equal(a, r.LookupHash("citizen.id_number", []byte("110101199003077778"))) {
		t.Fatal("different values hash equal")
	}
	if bytes.Equal(a, r.LookupHash("other", []byte("110101199003077777"))) {
		t.Fatal("domains not separated")
	}
	// Same value, different lookup key: different hash (keyed).
	r2, _ := New(Config{Keys: map[string]string{"k1": key(1)}, Primary: "k1", LookupKey: key(0xEF)})
	if bytes.Equal(a, r2.LookupHash("citizen.id_number", []byte("110101199003077777"))) {
		t.Fatal("hash does not depend on the key")
	}
	// Encryption-key rotation does not change lookup hashes.
	r3 := testRing(t, "k2", "k1", "k2")
	if !bytes.Equal(a, r3.LookupHash("citizen.id_number", []byte("110101199003077777"))) {
		t.Fatal("lookup hash changed with encryption key rotation")
	}
}

func TestAADUnambiguous(t *testing.T) {
	if bytes.Equal(AAD("a", "bc"), AAD("ab", "c")) {
		t.Fatal("AAD is ambiguous")
	}
	if bytes.Equal(AAD("a"), AAD("a", "")) {
		t.Fatal("AAD ignores empty part")
	}
}

func TestDeterministicWithRand(t *testing.T) {
	cfg := Config{Keys: map[string]string{"k1": key(1)}, Primary: "k1", LookupKey: key(2)}
	r1, _ := New(cfg, WithRand(bytes.NewReader(make([]byte, 24))))
	r2, _ := New(cfg, WithRand(bytes.NewReader(make([]byte, 24))))
	a, _ := r1.Seal([]byte("x"), nil)
	b, _ := r2.Seal([]byte("x"), nil)
	if !bytes.Equal(a, b) {
		t.Fatal("injected randomness not used")
	}
	if _, err := r1.Seal([]byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Seal([]byte("x"), nil); err == nil {
		t.Fatal("exhausted randomness should fail the seal")
	}
}

func TestGenerateDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r1, created, err := GenerateDev(dir)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(dir, DevFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	ct, _ := r1.Seal([]byte("v"), AAD("t"))
	r2, created, err := GenerateDev(dir)
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	if pt, err := r2.Open(ct, AAD("t")); err != nil || string(pt) != "v" {
		t.Fatalf("keys not reused: %q %v", pt, err)
	}
	if !bytes.Equal(r1.LookupHash("d", []byte("x")), r2.LookupHash("d", []byte("x"))) {
		t.Fatal("lookup key not reused")
	}
	if err := os.Chmod(filepath.Join(dir, DevFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := GenerateDev(dir); err == nil {
		t.Fatal("world-readable key file accepted")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("stray files in data dir: %v", ents)
	}
}

func FuzzOpen(f *testing.F) {
	// Fixed nonce: the fuzz workers rebuild this setup and must agree on ct.
	r0 := testRing(f, "k1", "k1", "k2")
	r := &Ring{aeads: r0.aeads, primary: r0.primary, lookup: r0.lookup, rand: bytes.NewReader(make([]byte, nonceSize))}
	aad := AAD("citizens", "id_number", "c1")
	ct, _ := r.Seal([]byte("110101199003077777"), aad)
	f.Add(ct)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add(append([]byte{1, 2, 'k', '2'}, make([]byte, 28)...))
	f.Add(append([]byte{1, 255}, make([]byte, 300)...))
	f.Fuzz(func(t *testing.T, c []byte) {
		pt, err := r.Open(c, aad)
		if err == nil {
			// Only genuine ciphertexts may open.
			if !bytes.Equal(c, ct) || string(pt) != "110101199003077777" {
				t.Fatalf("forged ciphertext opened: %x -> %q", c, pt)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrAuth) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		_, _ = KeyID(c)
	})
}

func BenchmarkSealOpen(b *testing.B) {
	r := testRing(b, "k1", "k1")
	aad := AAD("citizens", "id_number", "c1")
	pt := []byte("110101199003077777")
	b.ReportAllocs()
	for b.Loop() {
		ct, err := r.Seal(pt, aad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Open(ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}
