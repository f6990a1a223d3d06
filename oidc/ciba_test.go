package oidc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/trustid/trustid/oidc"
)

// TestCIBA: a desk client asks for a citizen's login by ID number, polls
// (authorization_pending, slow_down), the citizen approves in their signed-in
// session, the desk gets an ID token (pairwise sub, acr, name) and access
// token once; denial, expiry and every malformed request are refused.
func TestCIBA(t *testing.T) {
	e := newFakeEnv(t, nil)
	ctx := context.Background()
	adm := e.clientAdmin()
	_, deskSecret, err := adm.Create(ctx, "desk", oidc.ClientSpec{Name: "Vehicle office desk 4", GrantTypes: []string{oidc.GrantCIBA},
		Scopes: []string{"openid", "profile"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := adm.Create(ctx, "", oidc.ClientSpec{Name: "x", Public: true, RedirectURIs: []string{redirect},
		GrantTypes: []string{oidc.GrantCIBA}}); err == nil {
		t.Fatal("public CIBA client registered")
	}
	bc := func(id, secret string, form url.Values) (int, map[string]any) {
		t.Helper()
		resp := e.basicPost(oidc.PathBackchannel, id, secret, form)
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	poll := func(id, secret, authReqID string) (int, map[string]any) {
		t.Helper()
		return e.tokenPost(id, secret, "", url.Values{"grant_type": {oidc.GrantCIBA}, "auth_req_id": {authReqID}})
	}
	req := func(extra url.Values) url.Values {
		v := url.Values{"scope": {"openid profile"}, "login_hint": {idNumber}, "binding_message": {"Desk 4: 7391"}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}

	// Malformed requests.
	for _, tc := range []struct {
		name, id, secret string
		form             url.Values
		want             int
		code             string
	}{
		{"wrong secret", "desk", "nope", req(nil), 401, "invalid_client"},
		{"client without the grant", "machine", e.mSecret, req(nil), 400, "unauthorized_client"},
		{"no openid", "desk", deskSecret, req(url.Values{"scope": {"profile"}}), 400, "invalid_scope"},
		{"scope not allowed", "desk", deskSecret, req(url.Values{"scope": {"openid id_number"}}), 400, "invalid_scope"},
		{"unknown citizen", "desk", deskSecret, req(url.Values{"login_hint": {"110101199001011234"}}), 400, "unknown_user_id"},
		{"no hint", "desk", deskSecret, req(url.Values{"login_hint": {""}}), 400, "invalid_request"},
		{"two hints", "desk", deskSecret, req(url.Values{"id_token_hint": {"x"}}), 400, "invalid_request"},
		{"long binding message", "desk", deskSecret, req(url.Values{"binding_message": {strings.Repeat("x", 65)}}), 400, "invalid_binding_message"},
		{"bad expiry", "desk", deskSecret, req(url.Values{"requested_expiry": {"3600"}}), 400, "invalid_request"},
		{"unknown acr", "desk", deskSecret, req(url.Values{"acr_values": {"urn:x"}}), 400, "invalid_request"},
	} {
		if code, m := bc(tc.id, tc.secret, tc.form); code != tc.want || m["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, m, tc.want, tc.code)
		}
	}

	// The citizen is signed in at the provider in their browser.
	e.login(e.conf.AuthCodeURL("state-ciba-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil, true)

	code, m := bc("desk", deskSecret, req(nil))
	if code != 200 || m["auth_req_id"] == nil || m["interval"] != float64(5) || m["expires_in"] != float64(300) {
		t.Fatalf("bc-authorize: %d %v", code, m)
	}
	authReqID := m["auth_req_id"].(string)
	if code, m := poll("desk", deskSecret, authReqID); code != 400 || m["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", code, m)
	}
	if code, m := poll("desk", deskSecret, authReqID); code != 400 || m["error"] != "slow_down" {
		t.Fatalf("fast poll: %d %v", code, m)
	}
	if code, m := poll("machine", e.mSecret, authReqID); code == 200 || m["error"] == nil {
		t.Fatalf("poll by another client: %d %v", code, m)
	}

	// The citizen sees the request with its binding message and approves.
	resp, body := e.get(e.issuer + oidc.PathBackchannelPending)
	var raw struct {
		Pending []map[string]any `json:"pending"`
	}
	_ = json.Unmarshal([]byte(body), &raw)
	if resp.StatusCode != 200 || len(raw.Pending) != 1 || raw.Pending[0]["binding_message"] != "Desk 4: 7391" || raw.Pending[0]["client"] != "Vehicle office desk 4" {
		t.Fatalf("pending: %d %s", resp.StatusCode, body)
	}
	reqID, _ := raw.Pending[0]["id"].(string)
	if resp, body := e.post(e.issuer+oidc.PathBackchannelDecision, url.Values{"id": {"other"}, "decision": {"approve"}}); resp.StatusCode != 404 {
		t.Fatalf("decision on an unknown id: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.post(e.issuer+oidc.PathBackchannelDecision, url.Values{"id": {reqID}, "decision": {"approve"}}); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	// Without a session nobody can decide.
	anon := e.with(t, true)
	if resp, _ := anon.post(e.issuer+oidc.PathBackchannelDecision, url.Values{"id": {reqID}, "decision": {"deny"}}); resp.StatusCode != 401 {
		t.Fatalf("decision without a session: %d", resp.StatusCode)
	}

	code, m = poll("desk", deskSecret, authReqID)
	if code != 200 || m["access_token"] == nil || m["id_token"] == nil {
		t.Fatalf("poll after approval: %d %v", code, m)
	}
	idt, err := e.op.Verifier(&gooidc.Config{ClientID: "desk"}).Verify(ctx, m["id_token"].(string))
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		ACR  string `json:"acr"`
		Name string `json:"name"`
	}
	_ = idt.Claims(&claims)
	if claims.ACR != oidc.ACRFaceLiveness || claims.Name != citizenNm || idt.Subject == "" || idt.Subject == citizenID {
		t.Fatalf("ID token claims %+v sub %q", claims, idt.Subject)
	}
	ui, err := e.op.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: m["access_token"].(string), TokenType: "Bearer"}))
	if err != nil || ui.Subject != idt.Subject {
		t.Fatalf("userinfo: %v", err)
	}
	if code, m := poll("desk", deskSecret, authReqID); code != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("second poll after tokens: %d %v", code, m)
	}

	// Denied.
	_, m = bc("desk", deskSecret, req(nil))
	denied := m["auth_req_id"].(string)
	_, body = e.get(e.issuer + oidc.PathBackchannelPending)
	_ = json.Unmarshal([]byte(body), &raw)
	if len(raw.Pending) != 1 {
		t.Fatalf("pending after the first was used: %s", body)
	}
	if resp, _ := e.post(e.issuer+oidc.PathBackchannelDecision, url.Values{"id": {raw.Pending[0]["id"].(string)}, "decision": {"deny"}}); resp.StatusCode != 200 {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	if code, m := poll("desk", deskSecret, denied); code != 400 || m["error"] != "access_denied" {
		t.Fatalf("poll after denial: %d %v", code, m)
	}

	// A request above the session's assurance cannot be approved from it.
	bc("desk", deskSecret, req(url.Values{"acr_values": {oidc.ACRFaceLivenessPasskey}}))
	_, body = e.get(e.issuer + oidc.PathBackchannelPending)
	_ = json.Unmarshal([]byte(body), &raw)
	if resp, _ := e.post(e.issuer+oidc.PathBackchannelDecision, url.Values{"id": {raw.Pending[0]["id"].(string)}, "decision": {"approve"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approve above the session's acr: %d", resp.StatusCode)
	}

	// A sign-in older than 15 minutes cannot approve; a foreign Origin is refused.
	stale := e.with(t, true)
	stale.login(e.conf.AuthCodeURL("state-ciba-2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), url.Values{"ago": {"1h"}}, false)
	_, body = stale.get(e.issuer + oidc.PathBackchannelPending)
	_ = json.Unmarshal([]byte(body), &raw)
	if len(raw.Pending) == 0 {
		t.Fatalf("pending for the stale session: %s", body)
	}
	decide := url.Values{"id": {raw.Pending[0]["id"].(string)}, "decision": {"approve"}}
	if resp, body := stale.post(e.issuer+oidc.PathBackchannelDecision, decide); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "fresh_login_required") {
		t.Fatalf("approve from a stale sign-in: %d %s", resp.StatusCode, body)
	}
	req2, _ := http.NewRequest(http.MethodPost, e.issuer+oidc.PathBackchannelDecision, strings.NewReader(decide.Encode()))
	req2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req2.Header.Set("Origin", "https://evil.example")
	if resp, err := e.browser.Do(req2); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin decision: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Expiry.
	_, m = bc("desk", deskSecret, req(url.Values{"requested_expiry": {"1"}}))
	time.Sleep(1100 * time.Millisecond)
	if code, m := poll("desk", deskSecret, m["auth_req_id"].(string)); code != 400 || m["error"] != "expired_token" {
		t.Fatalf("poll after expiry: %d %v", code, m)
	}
	if code, m := poll("desk", deskSecret, "no-such-request"); code != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("unknown auth_req_id: %d %v", code, m)
	}

	// A client's requests are rate limited (30 per minute, counting those above).
	limited := 0
	for range 20 {
		if code, m := bc("desk", deskSecret, req(url.Values{"login_hint": {"110101199001011234"}})); code == http.StatusTooManyRequests && m["error"] == "slow_down" {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
}
