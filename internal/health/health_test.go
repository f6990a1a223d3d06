package health

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	ok := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("refused") }
	// slow honours its deadline: it fails only when its own timeout is short.
	slow := func(ctx context.Context) error {
		select {
		case <-time.After(300 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tests := []struct {
		name       string
		checks     []Check
		wantStatus int
		want       map[string]string
	}{
		{"all ok", []Check{{Name: "store", Probe: ok}, {Name: "ephemeral", Probe: ok}},
			200, map[string]string{"store": "ok", "ephemeral": "ok"}},
		{"one down", []Check{{Name: "store", Probe: ok}, {Name: "ephemeral", Probe: fail}},
			503, map[string]string{"store": "ok", "ephemeral": "unavailable"}},
		// A slow store with a long deadline does not eat the other check's time.
		{"separate deadlines", []Check{
			{Name: "store", Timeout: 2 * time.Second, Probe: slow},
			{Name: "ephemeral", Timeout: 100 * time.Millisecond, Probe: slow}},
			503, map[string]string{"store": "ok", "ephemeral": "unavailable"}},
		// A warning is shown but the node stays ready.
		{"warning", []Check{{Name: "store", Probe: ok}, {Name: "face_filing", Warning: func() string { return "100000 people" }}},
			200, map[string]string{"store": "ok", "face_filing": "warning: 100000 people"}},
		{"no warning", []Check{{Name: "face_filing", Warning: func() string { return "" }}},
			200, map[string]string{"face_filing": "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Ready(slog.New(slog.DiscardHandler), tc.checks...)(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); (tc.wantStatus == 503) != (got != "") {
				t.Errorf("Retry-After %q with status %d", got, rec.Code)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (answer %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestLive(t *testing.T) {
	rec := httptest.NewRecorder()
	Live(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}
