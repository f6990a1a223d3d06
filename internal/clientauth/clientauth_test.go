package clientauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/store"
)

type clientMap map[string]*store.Client

func (m clientMap) Get(_ context.Context, id string) (*store.Client, error) {
	if id == "down" {
		return nil, errors.New("store unavailable")
	}
	c, ok := m[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return c, nil
}

// TestHashFormat pins the stored form: HMAC-SHA256 under the key, the
// format oidc.SecretHasher wrote before this package existed, so existing
// databases still verify.
func TestHashFormat(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := New(Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("s3cret"))
	if got, want := hex.EncodeToString(a.Hash([]byte("s3cret"))), hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if _, err := New(Config{Key: key[:31]}); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	a, err := New(Config{Key: bytes.Repeat([]byte{7}, 32), Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte { return a.Hash([]byte(s)) }
	clients := clientMap{
		"app":     {ID: "app", SecretHash: h("new"), SecretHashOld: h("old"), SecretOldExpiresAt: now.Add(time.Hour)},
		"rotated": {ID: "rotated", SecretHash: h("new"), SecretHashOld: h("old"), SecretOldExpiresAt: now},
		"spa":     {ID: "spa", Public: true},
		"short":   {ID: "short", SecretHash: h("new")[:31]},
	}
	tests := []struct {
		name, id, secret string
		want             error // nil: authenticated
		fault            bool  // a store error, not a refusal
	}{
		{name: "current secret", id: "app", secret: "new"},
		{name: "previous secret within grace", id: "app", secret: "old"},
		{name: "previous secret when grace ends", id: "rotated", secret: "old", want: ErrInvalidCredentials},
		{name: "wrong secret", id: "app", secret: "guess", want: ErrInvalidCredentials},
		{name: "empty secret", id: "app", secret: "", want: ErrInvalidCredentials},
		{name: "public client", id: "spa", secret: "x", want: ErrInvalidCredentials},
		{name: "truncated stored hash", id: "short", secret: "new", want: ErrInvalidCredentials},
		{name: "unknown client", id: "ghost", secret: "x", want: ErrInvalidCredentials},
		{name: "store fault", id: "down", secret: "x", fault: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			c, err := a.Authenticate(t.Context(), clients, tc.id, tc.secret)
			switch {
			case tc.fault:
				if err == nil || errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("err = %v, want a fault", err)
				}
			case tc.want == nil:
				if err != nil || c.ID != tc.id {
					t.Fatalf("got %v, %v", c, err)
				}
			default:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if !strings.Contains(logs.String(), "client_id="+tc.id) {
					t.Errorf("failure not logged with the client id: %q", logs.String())
				}
				if tc.secret != "" && strings.Contains(logs.String(), tc.secret) {
					t.Errorf("secret logged: %q", logs.String())
				}
			}
		})
	}
}

func TestRotatedHashes(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	c := &store.Client{SecretHashOld: []byte("old"), SecretOldExpiresAt: now.Add(time.Second)}
	if got := RotatedHashes(c, now); len(got) != 1 {
		t.Fatalf("within grace: %q", got)
	}
	if got := RotatedHashes(c, now.Add(time.Second)); got != nil {
		t.Fatalf("after grace: %q", got)
	}
	if got := RotatedHashes(&store.Client{}, now); got != nil {
		t.Fatalf("never rotated: %q", got)
	}
}
