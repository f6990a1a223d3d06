package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// oauthCodes are the error codes an OAuth endpoint may answer: RFC 6749
// section 5.2 (and 4.1.2.1), RFC 6750 section 3.1, RFC 7591 section 3.2.2,
// CIBA Core sections 11 and 13, RFC 9449 section 5, and fosite's
// request_unauthorized (userinfo without a valid token).
var oauthCodes = []string{
	"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
	"invalid_scope", "access_denied", "server_error", "temporarily_unavailable",
	"invalid_token", "insufficient_scope",
	"invalid_redirect_uri", "invalid_client_metadata",
	"authorization_pending", "slow_down", "expired_token", "unknown_user_id", "invalid_binding_message",
	"invalid_dpop_proof", "request_unauthorized",
}

// TestErrorContracts calls each JSON API endpoint and each OAuth endpoint of
// README's HTTP API table on the real binary with a bad request and checks
// the answer's shape: a JSON API answers a 4xx
// {"error":{"code","message","request_id"}}, an OAuth endpoint a 400 or 401
// {"error","error_description"} with an RFC 6749 family code.
func TestErrorContracts(t *testing.T) {
	s := startServer(t)
	form := "application/x-www-form-urlencoded"
	admin := map[string]string{"Authorization": "Bearer test-admin-token"}
	multipart := "multipart/form-data; boundary=x"

	type call struct {
		name, method, path, ctype, body string
		header                          map[string]string
		status                          int    // 0: any 4xx (JSON API) or 400/401 (OAuth)
		code                            string // "" for any
	}
	// Passkey registration (/passkeys/register/*) is off on a bare-IP issuer
	// (WebAuthn needs a domain): oidc/passkey's tests cover its answers.
	jsonAPI := []call{
		{name: "face verify without credentials", method: "POST", path: "/v1/face/verify", ctype: multipart, body: "--x--", status: 401, code: "unauthorized"},
		{name: "register import without admin", method: "POST", path: "/v1/admin/register/import", ctype: multipart, body: "--x--", status: 401, code: "unauthorized"},
		{name: "admin clients without token", method: "GET", path: "/admin/clients", status: 401, code: "unauthorized"},
		{name: "admin create with bad JSON", method: "POST", path: "/admin/clients", ctype: "application/json", body: `{"client_id":`, header: admin, status: 400, code: "invalid_client_metadata"},
		{name: "admin create with unknown field", method: "POST", path: "/admin/clients", ctype: "application/json", body: `{"nope":1}`, header: admin, status: 400, code: "invalid_client_metadata"},
		{name: "admin get unknown client", method: "GET", path: "/admin/clients/no-such-client", header: admin, status: 404, code: "not_found"},
		{name: "admin update unknown client", method: "PUT", path: "/admin/clients/no-such-client", ctype: "application/json", body: `{"redirect_uris":["https://rp.example/cb"]}`, header: admin, status: 404, code: "not_found"},
		{name: "admin delete unknown client", method: "DELETE", path: "/admin/clients/no-such-client", header: admin, status: 404, code: "not_found"},
		{name: "admin rotate with bad grace", method: "POST", path: "/admin/clients/x/rotate-secret?grace=soon", header: admin, status: 400, code: "invalid_client_metadata"},
		{name: "certs verify malformed", method: "POST", path: "/certs/verify", ctype: "application/json", body: `{"payload":`, header: map[string]string{"Authorization": "Basic eDp5"}, status: 401, code: "verifier_unauthenticated"},
		{name: "certs face-check without credentials", method: "POST", path: "/certs/face-check", ctype: "application/json", body: `{}`, status: 401, code: "verifier_unauthenticated"},
		{name: "certs issue without session", method: "POST", path: "/certs/issue", ctype: "application/json", body: `{}`, status: 401, code: "not_signed_in"},
		{name: "certs device revoke without session", method: "POST", path: "/certs/devices/revoke", ctype: "application/json", body: `{}`, status: 401, code: "not_signed_in"},
		{name: "certs device challenge without session", method: "POST", path: "/certs/devices/challenge", ctype: "application/json", body: `{}`, status: 401, code: "not_signed_in"},
		{name: "certs devices without session", method: "GET", path: "/certs/devices", status: 401, code: "not_signed_in"},
		{name: "certs log without session", method: "GET", path: "/certs/log", status: 401},
		{name: "CIBA pending without session", method: "GET", path: "/oauth2/bc/pending", status: 401, code: "login_required"},
		{name: "CIBA decision without session", method: "POST", path: "/oauth2/bc/decision", ctype: form, body: "id=x&decision=approve", status: 401, code: "login_required"},
		{name: "account passkey removal with a wrong CSRF token", method: "POST", path: "/account/passkeys/remove", ctype: form, body: "credential_id=AA",
			header: map[string]string{"X-CSRF-Token": strings.Repeat("A", 43)}, status: 403, code: "csrf"},
		{name: "account app revocation with a wrong CSRF token", method: "POST", path: "/account/apps/revoke", ctype: form, body: "client_id=x",
			header: map[string]string{"X-CSRF-Token": strings.Repeat("A", 43)}, status: 403, code: "csrf"},
		{name: "desk decode with a wrong CSRF token", method: "POST", path: "/desk/decode", ctype: multipart, body: "--x--",
			header: map[string]string{"X-CSRF-Token": strings.Repeat("A", 43)}, status: 403, code: "csrf"},
	}
	oauth := []call{
		{name: "token without client", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "token with unknown client", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=client_credentials&client_id=nobody&client_secret=x", status: 401, code: "invalid_client"},
		{name: "token with unknown grant", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=password&username=a&password=b", status: 400, code: "unsupported_grant_type"},
		{name: "token with malformed form", method: "POST", path: "/oauth2/token", ctype: form, body: "%zz", status: 400, code: "invalid_request"},
		{name: "token with a client id that is not UTF-8", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=client_credentials&client_id=%FF&client_secret=x", status: 400, code: "invalid_request"},
		{name: "PAR with a body that is not a form", method: "POST", path: "/oauth2/par", ctype: "application/json", body: `{"response_type":"code"}`, status: 400, code: "invalid_request"},
		{name: "token without grant type", method: "POST", path: "/oauth2/token", ctype: form, body: ""},
		{name: "CIBA token poll without client", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=urn:openid:params:grant-type:ciba&auth_req_id=x", status: 400, code: "invalid_request"},
		{name: "CIBA token poll with unknown client", method: "POST", path: "/oauth2/token", ctype: form, body: "grant_type=urn:openid:params:grant-type:ciba&auth_req_id=x&client_id=nobody&client_secret=x", status: 401, code: "invalid_client"},
		{name: "PAR without client", method: "POST", path: "/oauth2/par", ctype: form, body: "response_type=code&client_id=nobody", status: 401, code: "invalid_client"},
		{name: "introspect without client", method: "POST", path: "/oauth2/introspect", ctype: form, body: "token=x", status: 401, code: "invalid_client"},
		{name: "revoke without client", method: "POST", path: "/oauth2/revoke", ctype: form, body: "token=x", status: 400, code: "invalid_request"},
		{name: "revoke with unknown client", method: "POST", path: "/oauth2/revoke", ctype: form, body: "token=x&client_id=nobody&client_secret=x", status: 401, code: "invalid_client"},
		{name: "CIBA bc-authorize without client", method: "POST", path: "/oauth2/bc-authorize", ctype: form, body: "scope=openid&login_hint=x", status: 401, code: "invalid_client"},
		{name: "CIBA bc-authorize with unknown client", method: "POST", path: "/oauth2/bc-authorize", ctype: form, body: "scope=openid&login_hint=x&client_id=nobody&client_secret=x", status: 401, code: "invalid_client"},
		{name: "userinfo without token", method: "GET", path: "/userinfo", status: 401},
		{name: "userinfo with a bad token", method: "GET", path: "/userinfo", header: map[string]string{"Authorization": "Bearer nope"}, status: 401},
	}

	do := func(t *testing.T, c call) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(c.method, s.base+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, c := range jsonAPI {
		t.Run("api/"+c.name, func(t *testing.T) {
			resp, b := do(t, c)
			if resp.StatusCode < 400 || resp.StatusCode > 499 || c.status != 0 && resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q: %s", ct, b)
			}
			var e apiError
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				t.Fatalf("not the JSON API error shape: %v: %s", err, b)
			}
			if e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" {
				t.Fatalf("error without code, message or request_id: %s", b)
			}
			if e.Error.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("request_id %q, header %q", e.Error.RequestID, resp.Header.Get("X-Request-Id"))
			}
			if c.code != "" && e.Error.Code != c.code {
				t.Fatalf("code %q, want %q", e.Error.Code, c.code)
			}
		})
	}
	for _, c := range oauth {
		t.Run("oauth/"+c.name, func(t *testing.T) {
			resp, b := do(t, c)
			if resp.StatusCode != 400 && resp.StatusCode != 401 || c.status != 0 && resp.StatusCode != c.status {
				t.Fatalf("status %d, want 400/401 (%d): %s", resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q: %s", ct, b)
			}
			var e map[string]any
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("not JSON: %v: %s", err, b)
			}
			code, ok := e["error"].(string)
			if !ok || !slices.Contains(oauthCodes, code) {
				t.Fatalf("error %v is not an RFC 6749 family code: %s", e["error"], b)
			}
			if c.code != "" && code != c.code {
				t.Fatalf("error %q, want %q", code, c.code)
			}
			for k := range e {
				if k != "error" && k != "error_description" && k != "error_uri" {
					t.Errorf("unexpected member %q: %s", k, b)
				}
			}
		})
	}

	// A page's plain form gets an HTML page, not JSON.
	t.Run("page/form post with a wrong CSRF field", func(t *testing.T) {
		resp, b := do(t, call{method: "POST", path: "/account/passkeys/remove", ctype: form,
			body: url.Values{"credential_id": {"AA"}, "csrf": {strings.Repeat("A", 43)}}.Encode()})
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
}
