package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// The browser session's grants under concurrency and faults: every
// authorization recorded in a session is revoked by its logout (none lost
// to a concurrent write, none recorded into a session a logout already
// ended), a fault is a fault (503, nothing changed), old sessions still
// log out fully, and a session's grants are bounded without forgetting
// live ones.

// grantStores are the ephemeral backends the tests run on: memory, and
// Redis (skipped unless TRUSTID_TEST_REDIS names a server).
func grantStores(*testing.T) map[string]func(t *testing.T) ephemeral.Store {
	return map[string]func(t *testing.T) ephemeral.Store{
		"memory": func(t *testing.T) ephemeral.Store {
			s := memory.New(memory.Options{})
			t.Cleanup(func() { s.Close() })
			return s
		},
		"redis": func(t *testing.T) ephemeral.Store { return redistest.Open(t, "grants") },
	}
}

// grantEph wraps a store: session reads can be slowed (widening the
// window between a read and its write-back) or hooked once, and lock
// writes (SetNX) and session deletes can fail as a Redis that is down.
type grantEph struct {
	ephemeral.Store
	slowGet   time.Duration
	onGet     func()
	once      sync.Once
	failSetNX atomic.Bool
	failDel   atomic.Bool
}

func (g *grantEph) Get(ctx context.Context, k string) ([]byte, error) {
	v, err := g.Store.Get(ctx, k)
	if strings.HasPrefix(k, "oidc:session:") {
		time.Sleep(g.slowGet)
		if g.onGet != nil {
			g.once.Do(g.onGet)
		}
	}
	return v, err
}

func (g *grantEph) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if g.failSetNX.Load() {
		return false, fmt.Errorf("redis: connection refused: %w", ephemeral.ErrUnavailable)
	}
	return g.Store.SetNX(ctx, k, v, ttl)
}

func (g *grantEph) Delete(ctx context.Context, k string) error {
	if g.failDel.Load() && strings.HasPrefix(k, "oidc:session:") {
		return fmt.Errorf("redis: connection refused: %w", ephemeral.ErrUnavailable)
	}
	return g.Store.Delete(ctx, k)
}

// revokeLog records the request ids whose access tokens were revoked.
// onRevoke, if set, runs once at the first revocation.
type revokeLog struct {
	mu       sync.Mutex
	ids      []string
	onRevoke func()
	once     sync.Once
}

func (r *revokeLog) RevokeAccessToken(_ context.Context, id string) error {
	if r.onRevoke != nil {
		r.once.Do(r.onRevoke)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

func (r *revokeLog) revoked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.ids)
	slices.Sort(out)
	return out
}

type noClients struct{}

func (noClients) Get(context.Context, string) (*store.Client, error) { return nil, store.ErrNotFound }

type noAudit struct{}

func (noAudit) RecordOrLog(context.Context, *store.AuditEvent) {}

// grantHarness is an authorizer and a logout sharing one ephemeral store,
// as New wires them, with a recording token revoker.
type grantHarness struct {
	eph    *grantEph
	az     *authorizer
	lo     *logout
	tokens *revokeLog
	now    time.Time
}

func newGrantHarness(t *testing.T, st ephemeral.Store) *grantHarness {
	h := &grantHarness{eph: &grantEph{Store: st}, tokens: &revokeLog{}, now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := func() time.Time { return h.now }
	b := &browser{eph: h.eph, log: log, path: "/"}
	h.az = &authorizer{eph: h.eph, browser: b, log: log, now: now, sessionTTL: time.Hour, grantLife: 16 * time.Minute, tokens: h.tokens}
	h.lo = &logout{
		csrfKey: []byte("test"), clients: noClients{}, eph: h.eph, tokens: h.tokens, log: log,
		events: events{rec: noAudit{}, now: now}, now: now, session: b.sessionOrFault,
		page:        func(w http.ResponseWriter, status int, _, _ string, _ any) { w.WriteHeader(status) },
		clearCookie: func(http.ResponseWriter, string) {},
	}
	return h
}

// putSession stores a session as raw JSON (the old format too).
func (h *grantHarness) putSession(t *testing.T, id, raw string) {
	t.Helper()
	if err := h.eph.Store.Set(context.Background(), sessionKey(id), []byte(raw), time.Hour); err != nil {
		t.Fatal(err)
	}
}

func (h *grantHarness) session(t *testing.T, id string) ([]byte, *browserSession) {
	t.Helper()
	b, err := h.eph.Store.Get(context.Background(), sessionKey(id))
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var s browserSession
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return b, &s
}

func withCookie(r *http.Request, id string) *http.Request {
	r.AddCookie(&http.Cookie{Name: cookieSession, Value: id})
	return r
}

func (h *grantHarness) grant(id, requestID string) error {
	return h.az.rememberGrant(withCookie(httptest.NewRequest(http.MethodGet, "/authorize", nil), id), "rp", requestID, false)
}

// logout posts the confirmed logout form and returns the status.
func (h *grantHarness) logout(id string) int {
	form := url.Values{"csrf": {h.lo.logoutCSRF(id)}, "decision": {"logout"}}
	r := withCookie(httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(form.Encode())), id)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.lo.serve(w, r)
	return w.Code
}

const grantSession = `{"sid":"s1","auth":{"citizen_id":"c1"}}`

// TestSessionGrantsConcurrent: authorizations finishing at once on one
// browser session all land, and logout revokes every one (lost update).
func TestSessionGrantsConcurrent(t *testing.T) {
	const n = 20
	for name, open := range grantStores(t) {
		t.Run(name, func(t *testing.T) {
			h := newGrantHarness(t, open(t))
			h.eph.slowGet = 2 * time.Millisecond // every read-modify-write overlaps others
			h.putSession(t, "cookie", grantSession)
			var want []string
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				id := fmt.Sprintf("req-%02d", i)
				want = append(want, id)
				wg.Go(func() { errs <- h.grant("cookie", id) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("rememberGrant: %v", err)
				}
			}
			if code := h.logout("cookie"); code != http.StatusOK {
				t.Fatalf("logout: %d", code)
			}
			if got := h.tokens.revoked(); !slices.Equal(got, want) {
				t.Fatalf("revoked %d grants %v, want all %d", len(got), got, n)
			}
			if b, _ := h.session(t, "cookie"); b != nil {
				t.Fatal("session outlived its logout")
			}
		})
	}
}

// TestSessionGrantRacesLogout: an authorization racing a logout either
// gets no code (an error) or has its grant revoked by that logout, and
// the logout's session does not come back (resurrection).
func TestSessionGrantRacesLogout(t *testing.T) {
	for name, open := range grantStores(t) {
		for _, first := range []string{"grant", "logout"} {
			t.Run(name+"/"+first+" reads first", func(t *testing.T) {
				h := newGrantHarness(t, open(t))
				h.putSession(t, "cookie", `{"sid":"s1","auth":{"citizen_id":"c1"},"grants":["earlier"]}`)
				var grantErr error
				var code int
				done := make(chan struct{})
				// The other party starts inside the first one's
				// read-modify-write (after the grant's session read, or at
				// the logout's first revocation) and gets a head start.
				hook := func() {
					go func() {
						defer close(done)
						if first == "grant" {
							code = h.logout("cookie")
						} else {
							grantErr = h.grant("cookie", "racing")
						}
					}()
					time.Sleep(30 * time.Millisecond)
				}
				if first == "grant" {
					h.eph.onGet = hook
				} else {
					h.tokens.onRevoke = hook
				}
				if first == "grant" {
					grantErr = h.grant("cookie", "racing")
				} else {
					code = h.logout("cookie")
				}
				<-done
				if code != http.StatusOK {
					t.Fatalf("logout: %d", code)
				}
				revoked := h.tokens.revoked()
				if grantErr == nil && !slices.Contains(revoked, "racing") {
					t.Fatalf("grant recorded (a code would be issued) but not revoked by the logout: revoked %v", revoked)
				}
				if grantErr != nil && !errors.Is(grantErr, errSessionEnded) {
					t.Fatalf("grant refused with %v, want errSessionEnded (login_required)", grantErr)
				}
				if !slices.Contains(revoked, "earlier") {
					t.Fatalf("earlier grant not revoked: %v", revoked)
				}
				if b, _ := h.session(t, "cookie"); b != nil {
					t.Fatalf("the logged-out session came back: %s", b)
				}
			})
		}
	}
}

// TestSessionGrantStoreFault: a store fault while locking, or a lock held
// by another node for longer than the wait, or a session that cannot be
// deleted, is a fault: the grant is refused as unavailable (503, no code)
// and changes nothing; logout answers 503 and the session stays.
func TestSessionGrantStoreFault(t *testing.T) {
	for name, open := range grantStores(t) {
		for _, tc := range []struct {
			name   string
			fault  func(h *grantHarness)
			grant  bool // rememberGrant fails too (Delete is not used by it)
			revoke bool // logout revoked the tokens before its fault
		}{
			{"lock write refused", func(h *grantHarness) { h.eph.failSetNX.Store(true) }, true, false},
			{"lock held elsewhere", func(h *grantHarness) {
				if err := h.eph.Store.Set(context.Background(), sessionLockKey("cookie"), []byte("other node"), time.Minute); err != nil {
					t.Fatal(err)
				}
			}, true, false},
			{"session delete refused", func(h *grantHarness) { h.eph.failDel.Store(true) }, false, true},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				t.Parallel() // the busy lock waits sessionLockWait
				h := newGrantHarness(t, open(t))
				h.putSession(t, "cookie", `{"sid":"s1","auth":{"citizen_id":"c1"},"grants":["g1"]}`)
				before, _ := h.session(t, "cookie")
				tc.fault(h)
				if tc.grant {
					err := h.grant("cookie", "g2")
					if err == nil || errors.Is(err, errSessionEnded) || errors.Is(err, errSessionFull) {
						t.Fatalf("rememberGrant during the fault: %v, want a fault", err)
					}
					if !httperr.IsUnavailable(fmt.Errorf("%w: %w", httperr.ErrUnavailable, err)) {
						t.Fatalf("not answered as unavailable: %v", err)
					}
					if after, _ := h.session(t, "cookie"); string(after) != string(before) {
						t.Fatalf("session changed by a refused grant:\n%s\n%s", before, after)
					}
				}
				if code := h.logout("cookie"); code != http.StatusServiceUnavailable {
					t.Fatalf("logout during the fault: %d, want 503", code)
				}
				if b, _ := h.session(t, "cookie"); b == nil {
					t.Fatal("logout answered 503 but the session is gone")
				}
				if got := h.tokens.revoked(); (len(got) > 0) != tc.revoke {
					t.Fatalf("revoked %v during the fault", got)
				}
			})
		}
	}
}

// TestSessionGrantsOldFormat: a session stored before grants had a time
// (a list of request ids) still takes grants and logs out fully, also
// past the bound of 64 that used to drop the oldest grant.
func TestSessionGrantsOldFormat(t *testing.T) {
	for name, open := range grantStores(t) {
		for _, n := range []int{2, 100} {
			t.Run(fmt.Sprintf("%s/%d grants", name, n), func(t *testing.T) {
				h := newGrantHarness(t, open(t))
				var old []string
				for i := range n {
					old = append(old, fmt.Sprintf("old-%03d", i))
				}
				ids, _ := json.Marshal(old)
				h.putSession(t, "cookie", `{"sid":"s1","auth":{"citizen_id":"c1"},"clients":["rp"],"grants":`+string(ids)+`}`)
				h.now = h.now.Add(7 * time.Hour) // the old grants' times are unknown: kept
				if err := h.grant("cookie", "new-1"); err != nil {
					t.Fatal(err)
				}
				if code := h.logout("cookie"); code != http.StatusOK {
					t.Fatalf("logout: %d", code)
				}
				want := append([]string{"new-1"}, old...)
				if got := h.tokens.revoked(); !slices.Equal(got, want) {
					t.Fatalf("revoked %d %v, want %d", len(got), got, len(want))
				}
			})
		}
	}
}

// TestSessionGrantsBound: a session's grants are pruned only of those that
// can have no live access token; a session still at maxSessionGrants
// refuses the authorization (no grant is dropped silently).
func TestSessionGrantsBound(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	stale := now.Add(-16*time.Minute - grantClockSlack - time.Second)
	live := now.Add(-16*time.Minute - grantClockSlack + time.Second)
	grants := func(n int, at time.Time, offline bool) []sessionGrant {
		out := make([]sessionGrant, n)
		for i := range out {
			out[i] = sessionGrant{ID: fmt.Sprintf("%s-%t-%04d", at.Format("150405"), offline, i), At: at, Offline: offline}
		}
		return out
	}
	bare := func(n int) []sessionGrant { return grants(n, time.Time{}, false) }
	for name, open := range grantStores(t) {
		for _, tc := range []struct {
			name    string
			grants  []sessionGrant
			full    bool
			kept    int // grants before the new one that survive
			revoked int // at logout, the new one included
		}{
			{"over the old bound of 64", grants(65, live, false), false, 65, 66},
			{"full of live grants", grants(maxSessionGrants, live, false), true, 0, maxSessionGrants},
			{"full of old-format grants", bare(maxSessionGrants), true, 0, maxSessionGrants},
			{"full of offline grants", grants(maxSessionGrants, stale, true), true, 0, maxSessionGrants},
			{"full, mostly stale", append(grants(maxSessionGrants-10, stale, false), grants(10, live, false)...), false, 10, 11},
			{"stale, live, offline, old format", slices.Concat(grants(5, stale, false), grants(3, live, false), grants(2, stale, true), bare(1)), false, 6, 7},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				h := newGrantHarness(t, open(t))
				h.now = now
				b, err := json.Marshal(browserSession{SID: "s1", Auth: Authentication{CitizenID: "c1"}, Grants: tc.grants})
				if err != nil {
					t.Fatal(err)
				}
				h.putSession(t, "cookie", string(b))
				err = h.grant("cookie", "new")
				if tc.full {
					if !errors.Is(err, errSessionFull) {
						t.Fatalf("grant into a full session: %v, want errSessionFull", err)
					}
					if after, _ := h.session(t, "cookie"); string(after) != string(b) {
						t.Fatal("a refused grant changed the session")
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					_, s := h.session(t, "cookie")
					if len(s.Grants) != tc.kept+1 || s.Grants[len(s.Grants)-1].ID != "new" || !s.Grants[len(s.Grants)-1].At.Equal(now) {
						t.Fatalf("%d grants after the new one (last %+v), want %d kept + the new one", len(s.Grants), s.Grants[len(s.Grants)-1], tc.kept)
					}
					for _, g := range s.Grants {
						if !g.Offline && !g.At.IsZero() && !g.At.After(stale) {
							t.Fatalf("stale grant %s kept", g.ID)
						}
					}
				}
				if code := h.logout("cookie"); code != http.StatusOK {
					t.Fatalf("logout: %d", code)
				}
				if got := h.tokens.revoked(); len(got) != tc.revoked {
					t.Fatalf("logout revoked %d grants, want %d", len(got), tc.revoked)
				}
			})
		}
	}
}

// TestReplaceSession: a sign-in over an existing session (replaceSession)
// moves the same citizen's grants to the new session and revokes another
// citizen's; a fault is an error that leaves the old session in place
// (a lock that cannot be taken: nothing written at all).
func TestReplaceSession(t *testing.T) {
	const oldRaw = `{"sid":"s-old","auth":{"citizen_id":"cit-a"},"clients":["rp"],"grants":["g1",{"id":"g2","at":"2026-12-07T11:59:00Z"}]}`
	for name, open := range grantStores(t) {
		for _, tc := range []struct {
			name        string
			citizen     string
			failSetNX   bool
			failDel     bool
			wantErr     bool
			wantRevoked []string
			wantGrants  []string // in the new session (nil: not written)
			wantOldKept bool
		}{
			{name: "same citizen", citizen: "cit-a", wantGrants: []string{"g1", "g2"}},
			{name: "another citizen", citizen: "cit-b", wantRevoked: []string{"g1", "g2"}, wantGrants: []string{}},
			{name: "lock refused", citizen: "cit-b", failSetNX: true, wantErr: true, wantOldKept: true},
			{name: "delete refused", citizen: "cit-b", failDel: true, wantErr: true, wantRevoked: []string{"g1", "g2"}, wantGrants: []string{}, wantOldKept: true},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				h := newGrantHarness(t, open(t))
				h.putSession(t, "old", oldRaw)
				before, _ := h.session(t, "old")
				h.eph.failSetNX.Store(tc.failSetNX)
				h.eph.failDel.Store(tc.failDel)
				bs := &browserSession{SID: "s-new", Auth: Authentication{CitizenID: tc.citizen}}
				_, err := h.az.replaceSession(context.Background(), true, "old", "new", bs)
				h.eph.failSetNX.Store(false)
				h.eph.failDel.Store(false)
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", err, tc.wantErr)
				}
				if got := h.tokens.revoked(); !slices.Equal(got, tc.wantRevoked) {
					t.Fatalf("revoked %v, want %v", got, tc.wantRevoked)
				}
				after, _ := h.session(t, "old")
				if tc.wantOldKept != (after != nil) || (tc.failSetNX && !bytes.Equal(after, before)) {
					t.Fatalf("old session after: %s (want kept %v)", after, tc.wantOldKept)
				}
				_, ns := h.session(t, "new")
				if tc.wantGrants == nil {
					if ns != nil {
						t.Fatalf("new session written: %+v", ns)
					}
					return
				}
				if ns == nil {
					t.Fatal("new session not written")
				}
				var ids []string
				for _, g := range ns.Grants {
					ids = append(ids, g.ID)
				}
				if !slices.Equal(ids, tc.wantGrants) && !(len(ids) == 0 && len(tc.wantGrants) == 0) {
					t.Fatalf("new session grants %v, want %v", ids, tc.wantGrants)
				}
			})
		}
	}
}
