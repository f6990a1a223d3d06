package storage_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/ephemeral/redis/redistest"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/postgres"
	"github.com/trustid/trustid/internal/store/postgres/pgtest"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
	"github.com/trustid/trustid/oidc/storage"
)

// openStore makes the backing store: SQLite in the test's temporary
// directory; TestOnPostgres and TestWithoutStoreTransactions swap it to
// rerun the backend tests.
var openStore = func(t *testing.T) store.Store { return sqlitetest.Open(t) }

// atMode is Config.AccessTokens and openEphemeral the ephemeral store of
// the tests; runEphemeral swaps them to rerun the tests with ephemeral
// access tokens.
var (
	atMode        = storage.AccessTokensDurable
	openEphemeral = memoryStore
)

// memoryStore is the in-process ephemeral store, closed when t ends.
func memoryStore(t *testing.T) ephemeral.Store {
	s := memory.New(memory.Options{})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// gone reports whether err is how a missing or revoked access token reads:
// durable ones are deleted (fosite.ErrNotFound), ephemeral ones may be
// marked revoked (fosite.ErrInactiveToken).
func gone(err error) bool {
	return errors.Is(err, fosite.ErrNotFound) || (atMode != storage.AccessTokensDurable && errors.Is(err, fosite.ErrInactiveToken))
}

// openStoreWithApp is openStore holding the client "app" of the tests.
func openStoreWithApp(t *testing.T) store.Store {
	t.Helper()
	st := openStore(t)
	if err := st.Clients().Create(context.Background(), &store.Client{
		ID: "app", RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "profile"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, SecretHash: []byte("h"),
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

func newStorage(t *testing.T) (*storage.Storage, store.Store) {
	t.Helper()
	st := openStoreWithApp(t)
	s, err := storage.New(storage.Config{
		Store: st, Ephemeral: openEphemeral(t), AccessTokens: atMode,
		NewSession: func() fosite.Session { return openid.NewDefaultSession() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func request(t *testing.T, s *storage.Storage, id string) *fosite.AuthorizeRequest {
	t.Helper()
	c, err := s.GetClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	sess := openid.NewDefaultSession()
	sess.Subject = "citizen-1"
	sess.Claims = &jwt.IDTokenClaims{Subject: "pairwise-sub", AuthTime: time.Unix(1700000000, 0).UTC(), Extra: map[string]any{"acr": "x"}}
	sess.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
	sess.SetExpiresAt(fosite.RefreshToken, time.Now().Add(time.Hour))
	ar := fosite.NewAuthorizeRequest()
	ar.ID = id
	ar.Client = c
	ar.Session = sess
	ar.RequestedScope = fosite.Arguments{"openid", "profile"}
	ar.GrantScope("openid")
	ar.Form = url.Values{"nonce": {"n-0123456789"}, "client_secret": {"never-stored"}}
	ar.RedirectURI, _ = url.Parse("https://app.example/cb")
	ar.State = "st"
	ar.ResponseTypes = fosite.Arguments{"code"}
	return ar
}

func TestNewRejectsMissingDependencies(t *testing.T) {
	if _, err := storage.New(storage.Config{}); !errors.Is(err, storage.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

func TestGetClient(t *testing.T) {
	s, _ := newStorage(t)
	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{"known", "app", nil},
		{"unknown", "nope", fosite.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.GetClient(context.Background(), tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (c.GetID() != "app" || !c.GetGrantTypes().Has("refresh_token") || c.IsPublic()) {
				t.Fatalf("client = %+v", c)
			}
		})
	}
}

func TestAuthorizeCodeRoundTripAndInvalidation(t *testing.T) {
	ctx := context.Background()
	s, st := newStorage(t)
	ar := request(t, s, "req-1")
	if err := s.CreateAuthorizeCodeSession(ctx, "sig", ar); err != nil {
		t.Fatal(err)
	}
	sess := openid.NewDefaultSession()
	got, err := s.GetAuthorizeCodeSession(ctx, "sig", sess)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetID() != "req-1" || got.GetClient().GetID() != "app" || !got.GetGrantedScopes().Has("openid") || got.GetGrantedScopes().Has("profile") {
		t.Fatalf("request = %+v", got)
	}
	if got.GetRequestForm().Get("nonce") != "n-0123456789" || got.GetRequestForm().Has("client_secret") {
		t.Fatalf("form = %v", got.GetRequestForm())
	}
	if sess.Subject != "citizen-1" || sess.Claims.Subject != "pairwise-sub" || sess.Claims.Extra["acr"] != "x" || !sess.Claims.AuthTime.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("session = %+v claims %+v", sess, sess.Claims)
	}
	if got.(fosite.AuthorizeRequester).GetState() != "st" {
		t.Fatalf("state lost")
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig"); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetAuthorizeCodeSession(ctx, "sig", openid.NewDefaultSession())
	// The store dropped the used code's data: the request stands in with
	// its ID and client, what fosite needs to revoke the tokens issued.
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || got == nil || got.GetID() != "req-1" || got.GetClient().GetID() != ar.GetClient().GetID() {
		t.Fatalf("used code: got %v, %v; want request and ErrInvalidatedAuthorizeCode", got, err)
	}
	if rec, err := st.OAuth().Get(ctx, store.OAuthCode, "sig"); err != nil || rec.Active || rec.Data != nil {
		t.Fatalf("used code record: %+v %v; want inactive without data", rec, err)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig"); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("second invalidation: %v", err)
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, "other", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("missing code: %v", err)
	}
	if recs, err := st.OAuth().ListByRequestID(ctx, store.OAuthCode, "req-1", 0); err != nil || len(recs) != 1 {
		t.Fatalf("code records = %d, %v; want 1", len(recs), err)
	}
}

func TestRefreshRotationAndFamilyRevocation(t *testing.T) {
	ctx := context.Background()
	s, _ := newStorage(t)
	ar := request(t, s, "fam")
	for _, sig := range []string{"at1", "at2"} {
		if err := s.CreateAccessTokenSession(ctx, sig, ar); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt1", "at1", ar); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, "fam", "rt1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at2", openid.NewDefaultSession()); !gone(err) {
		t.Fatalf("rotation left the family's access token: %v", err)
	}
	if err := s.RotateRefreshToken(ctx, "fam", "rt1"); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("double rotation: %v", err)
	}
	got, err := s.GetRefreshTokenSession(ctx, "rt1", openid.NewDefaultSession())
	if !errors.Is(err, fosite.ErrInactiveToken) || got == nil || got.GetID() != "fam" || got.GetClient().GetID() != ar.GetClient().GetID() {
		t.Fatalf("rotated token: %v %v", got, err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt2", "at3", ar); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at3", ar); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshToken(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAccessToken(ctx, "fam"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt2", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("family not revoked: %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at3", openid.NewDefaultSession()); !gone(err) {
		t.Fatalf("revoked access token: %v", err)
	}
}

func TestPKCEOpenIDAndPAR(t *testing.T) {
	ctx := context.Background()
	s, st := newStorage(t)
	ar := request(t, s, "r")
	if err := s.CreatePKCERequestSession(ctx, "sig", ar); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(ctx, "sig", openid.NewDefaultSession()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePKCERequestSession(ctx, "sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(ctx, "sig", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("deleted pkce: %v", err)
	}

	if err := s.CreateOpenIDConnectSession(ctx, "raw-code", ar); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OAuth().Get(ctx, store.OAuthOIDC, "raw-code"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("raw authorization code used as a storage key")
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "raw-code", fosite.NewAccessRequest(openid.NewDefaultSession())); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOpenIDConnectSession(ctx, "raw-code"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "raw-code", fosite.NewAccessRequest(openid.NewDefaultSession())); !errors.Is(err, openid.ErrNoSessionFound) {
		t.Fatalf("deleted oidc session: %v", err)
	}

	ar.GetSession().SetExpiresAt(fosite.PushedAuthorizeRequestContext, time.Now().Add(time.Minute))
	if err := s.CreatePARSession(ctx, "urn:x:1", ar); err != nil {
		t.Fatal(err)
	}
	par, err := s.GetPARSession(ctx, "urn:x:1")
	if err != nil {
		t.Fatal(err)
	}
	if par.GetRedirectURI().String() != "https://app.example/cb" || par.GetState() != "st" || !par.GetResponseTypes().ExactOne("code") {
		t.Fatalf("par = %+v", par)
	}
	if err := s.DeletePARSession(ctx, "urn:x:1"); err != nil {
		t.Fatal(err)
	}
}

func TestClientAssertionJTI(t *testing.T) {
	ctx := context.Background()
	s, _ := newStorage(t)
	if err := s.ClientAssertionJWTValid(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClientAssertionJWT(ctx, "j1", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClientAssertionJWTValid(ctx, "j1"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Fatalf("replayed jti: %v", err)
	}
}

func TestDeleteExpired(t *testing.T) {
	ctx := context.Background()
	s, _ := newStorage(t)
	ar := request(t, s, "r")
	ar.GetSession().SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Minute))
	if err := s.CreateAccessTokenSession(ctx, "old", ar); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "live", "", ar); err != nil {
		t.Fatal(err)
	}
	want := 1
	if atMode != storage.AccessTokensDurable {
		want = 0 // expired access tokens are not stored
	}
	n, err := s.DeleteExpired(ctx)
	if err != nil || n != want {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, want)
	}
	if _, err := s.GetAccessTokenSession(ctx, "old", openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("expired access token: %v", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "live", openid.NewDefaultSession()); err != nil {
		t.Fatalf("live record removed: %v", err)
	}
}

func testRing(t *testing.T) *seal.Ring {
	k := func(b byte) string { return strings.Repeat(string(rune('A'+b)), 43) + "=" }
	r, err := seal.New(seal.Config{Keys: map[string]string{"k1": k(1)}, Primary: "k1", LookupKey: k(2)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// backendTests are rerun on each real backend.
var backendTests = map[string]func(*testing.T){
	"GetClient": TestGetClient, "AuthorizeCode": TestAuthorizeCodeRoundTripAndInvalidation,
	"Refresh": TestRefreshRotationAndFamilyRevocation, "PKCEOpenIDPAR": TestPKCEOpenIDAndPAR,
	"JTI": TestClientAssertionJTI, "DeleteExpired": TestDeleteExpired,
	"RefreshIsOneWrite": TestRefreshIsOneWrite, "ConcurrentRefresh": TestConcurrentRefresh, "LazyTx": TestLazyTx,
	"EphemeralAccessTokens": TestEphemeralAccessTokens,
	"RefreshWhileRefusing":  TestRefreshWhileEphemeralRefusesWrites, "RevokeWhileRefusing": TestRevokeWhileEphemeralRefusesWrites,
	"RefreshGracePeriod": TestRefreshGracePeriod, "GraceCarriedByRetries": TestRefreshGraceCarriedByFailedRetries,
	"AnswerLostAfterCommit": TestRefreshAnswerLostAfterCommit,
}

// runEphemeral reruns the backend tests with access tokens in the
// ephemeral store open makes.
func runEphemeral(t *testing.T, open func(*testing.T) ephemeral.Store) {
	defer func(m string, o func(*testing.T) ephemeral.Store) { atMode, openEphemeral = m, o }(atMode, openEphemeral)
	atMode, openEphemeral = storage.AccessTokensEphemeral, open
	for name, fn := range backendTests {
		t.Run(name, fn)
	}
}

// TestEphemeralMode reruns the tests with access tokens in the memory
// backend and, when TRUSTID_TEST_REDIS names a server, in Redis.
func TestEphemeralMode(t *testing.T) {
	t.Run("memory", func(t *testing.T) { runEphemeral(t, memoryStore) })
	t.Run("redis", func(t *testing.T) {
		redisStore(t) // skip (or fail in CI) early without a server
		runEphemeral(t, redisStore)
	})
}

// redisStore is a Redis ephemeral store under a key prefix of its own.
func redisStore(t *testing.T) ephemeral.Store { return redistest.Open(t, "oidcstorage") }

// TestWithoutStoreTransactions reruns the tests on a store that is not a
// store.Transactor (the interface is optional): SQLite with BeginTx
// hidden, so each call commits alone.
func TestWithoutStoreTransactions(t *testing.T) {
	defer func(o func(*testing.T) store.Store) { openStore = o }(openStore)
	openStore = func(t *testing.T) store.Store { return struct{ store.Store }{sqlitetest.Open(t)} }
	for name, fn := range backendTests {
		t.Run(name, fn)
	}
	t.Run("ephemeral", func(t *testing.T) { runEphemeral(t, memoryStore) })
}

// TestOnPostgres reruns the tests on PostgreSQL (pgtest.EnvVar).
func TestOnPostgres(t *testing.T) {
	pgtest.DSN(t) // skip (or fail in CI) early without a server
	defer func(o func(*testing.T) store.Store) { openStore = o }(openStore)
	openStore = func(t *testing.T) store.Store {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t), testRing(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	for name, fn := range backendTests {
		t.Run(name, fn)
	}
	t.Run("ephemeral", func(t *testing.T) { runEphemeral(t, redisStore) })
}
