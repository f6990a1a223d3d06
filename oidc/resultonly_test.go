package oidc_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/oidc"
)

// plaintext are the claims that name a citizen in plaintext.
var plaintext = []string{"name", "birthdate", "id_number", "verified_claims"}

// tokenClaims returns the ID token's and userinfo's claims of tok.
func tokenClaims(t *testing.T, e *env, clientID string, tok *oauth2.Token) (idc, uic map[string]any) {
	t.Helper()
	ctx := context.Background()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := e.op.Verifier(&gooidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	if err := idt.Claims(&idc); err != nil {
		t.Fatal(err)
	}
	ui, err := e.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if err := ui.Claims(&uic); err != nil {
		t.Fatal(err)
	}
	return idc, uic
}

func noPlaintext(t *testing.T, where string, c map[string]any) {
	t.Helper()
	for _, k := range plaintext {
		if _, ok := c[k]; ok {
			t.Errorf("%s carries %q: %v", where, k, c)
		}
	}
	for _, v := range c {
		if s, ok := v.(string); ok && (strings.Contains(s, citizenNm) || strings.Contains(s, idNumber[6:14])) {
			t.Errorf("%s carries plaintext identity %q", where, s)
		}
	}
}

// TestResultOnlyByDefault: an app asking only openid gets the result and
// its assurance (pairwise sub, acr, amr, auth_time) and nothing that
// identifies the citizen; after the separate claims consent it gets the
// claims ticked (and only those); the consent is in the store and the
// audit log with its time; once revoked, the next refresh and userinfo
// call release nothing.
func TestResultOnlyByDefault(t *testing.T) {
	ctx := context.Background()
	e := newFakeEnv(t, nil)

	// 1. openid only: no consent page about identity, no plaintext.
	conf := *e.conf
	conf.Scopes = []string{"openid", "offline_access"}
	verifier := oauth2.GenerateVerifier()
	q := e.login(conf.AuthCodeURL("state-result-only", oauth2.S256ChallengeOption(verifier)), nil, true)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idc, uic := tokenClaims(t, e, "rp", tok)
	noPlaintext(t, "ID token (openid only)", idc)
	noPlaintext(t, "userinfo (openid only)", uic)
	if idc["acr"] != oidc.ACRFaceLiveness || idc["amr"] == nil || idc["auth_time"] == nil || idc["sub"] == citizenID || idc["sub"] == "" {
		t.Fatalf("the result is missing: %v", idc)
	}

	// 2. The app asks for identity: a separate page, nothing pre-ticked;
	// the citizen shares only the name.
	conf.Scopes = []string{"openid", "offline_access", "profile", "id_number", "identity"}
	verifier = oauth2.GenerateVerifier()
	resp, body := e.get(conf.AuthCodeURL("state-claims-1", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/oauth2/consent/claims"`) {
		t.Fatalf("want the claims consent page straight after the session sign-in, got %d %s", resp.StatusCode, body)
	}
	for _, c := range plaintext {
		if !strings.Contains(body, `value="`+c+`"`) {
			t.Errorf("claims page does not offer %q", c)
		}
	}
	before := time.Now().UTC().Add(-time.Second)
	q = callback(t, e.shareClaims(body, []string{"name"}))
	tok, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idc, uic = tokenClaims(t, e, "rp", tok)
	if idc["name"] != citizenNm || uic["name"] != citizenNm {
		t.Fatalf("shared name not released: id %v userinfo %v", idc, uic)
	}
	for _, k := range []string{"birthdate", "id_number", "verified_claims"} {
		if uic[k] != nil || idc[k] != nil {
			t.Errorf("refused claim %q released: %v", k, uic)
		}
	}
	con, err := e.st.Consents().Get(ctx, citizenID, "rp")
	if err != nil || !slices.Equal(con.Claims, []string{"name"}) || con.ClaimsGrantedAt.Before(before) {
		t.Fatalf("stored consent %+v, %v", con, err)
	}
	evs, err := e.st.Audit().ListBySubject(ctx, citizenID, "oidc.consent", 100)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ev := range evs {
		if ev.Action == "oidc.consent.claims" && ev.Object == "rp" && ev.Detail["claims"] == "name" &&
			strings.Contains(ev.Detail["refused"], "id_number") && ev.Detail["at"] != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no oidc.consent.claims audit event among %d", len(evs))
	}

	// 3. The decision is remembered: the next sign-in asks nothing.
	verifier2 := oauth2.GenerateVerifier()
	if q := e.login(conf.AuthCodeURL("state-claims-2", oauth2.S256ChallengeOption(verifier2)), nil, false); q.Get("code") == "" {
		t.Fatalf("callback %v", q)
	}

	// 4. Revoked on the account page (the consent is deleted): the next
	// refresh's ID token and the next userinfo call release nothing.
	if err := e.st.Consents().Delete(ctx, citizenID, "rp"); err != nil {
		t.Fatal(err)
	}
	_, uic = tokenClaims(t, e, "rp", tok)
	noPlaintext(t, "userinfo after revocation", uic)
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	idc, uic = tokenClaims(t, e, "rp", tok2)
	noPlaintext(t, "ID token after revocation", idc)
	noPlaintext(t, "userinfo after revocation (refreshed)", uic)
}

// TestNetworkNumberClaim: the sign-in assigns the 网号; a first-party
// client or one registered with the network_number permission gets it as
// a claim; another client asking for the scope is not granted it.
func TestNetworkNumberClaim(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	nums, err := netnumber.New(netnumber.Config{Citizens: st.Citizens(), KeyID: "7", Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, st, memoryStore(t), func(c *oidc.Config) { c.NetworkNumbers = nums })
	adm := e.clientAdmin()
	for _, c := range []struct {
		id    string
		first bool
		perm  []string
		gets  bool
	}{{"portal", true, nil, true}, {"bank", false, []string{"network_number"}, true}, {"shop", false, nil, false}} {
		t.Run(c.id, func(t *testing.T) {
			_, secret, err := adm.Create(ctx, c.id, oidc.ClientSpec{Name: c.id, RedirectURIs: []string{redirect}, FirstParty: c.first,
				Claims: c.perm, Scopes: []string{"openid", "network_number"}, GrantTypes: []string{"authorization_code"}})
			if err != nil {
				t.Fatal(err)
			}
			conf := *e.conf
			conf.ClientID, conf.ClientSecret, conf.Scopes = c.id, secret, []string{"openid", "network_number"}
			verifier := oauth2.GenerateVerifier()
			q := e.login(conf.AuthCodeURL("state-nn-"+c.id, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")), nil, true)
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			cit, err := st.Citizens().Get(ctx, citizenID)
			if err != nil || !netnumber.Valid(cit.NetworkNumber) || !strings.HasPrefix(cit.NetworkNumber, "7") {
				t.Fatalf("the sign-in assigned no network number: %+v %v", cit, err)
			}
			idc, uic := tokenClaims(t, e, c.id, tok)
			noPlaintext(t, "ID token", idc)
			if got := uic["network_number"]; c.gets && (got != cit.NetworkNumber || idc["network_number"] != cit.NetworkNumber) {
				t.Fatalf("network_number = %v / %v, want %q", idc["network_number"], got, cit.NetworkNumber)
			} else if !c.gets && (got != nil || idc["network_number"] != nil) {
				t.Fatalf("client without the permission got network_number %v", got)
			}
		})
	}
}
