package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestClientAuthHonesty drives the real binary (issue 16 points 6 and 8):
// discovery publishes the introspection and revocation auth methods;
// /v1/face/verify answers 403 face_verify_not_allowed
// to an authenticated client that is not registered for it; and failed
// client authentications at the token endpoint limit the address for the
// verifier API and the identity API too (one clientauth component):
// afterwards even a correct secret gets 429 with Retry-After on all three.
func TestClientAuthHonesty(t *testing.T) {
	s := startServer(t)
	admin := func(body string) (id, secret string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+"/admin/clients", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer test-admin-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 201 {
			t.Fatalf("create client: %d %v", resp.StatusCode, err)
		}
		return c.ID, c.Secret
	}
	hotel, hotelSecret := admin(`{"client_id":"hotel","name":"Hotel","role":"hotel","grant_types":["client_credentials"],"scopes":["openid"]}`)
	facer, facerSecret := admin(`{"client_id":"facer","name":"Bank","grant_types":["client_credentials"],"scopes":["identity:face_verify"]}`)

	faceVerify := func(user, pass string) (*http.Response, string) {
		t.Helper()
		var b strings.Builder
		w := multipart.NewWriter(&b)
		_ = w.WriteField("id_number", "110101199003074512")
		pw, _ := w.CreateFormFile("photo", "p.jpg")
		pw.Write([]byte("not a jpeg"))
		w.Close()
		req, _ := http.NewRequest("POST", s.base+"/v1/face/verify", strings.NewReader(b.String()))
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.SetBasicAuth(user, pass)
		return doRequest(t, req)
	}
	certVerify := func(user, pass string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+"/certs/verify", strings.NewReader(`{"payload":"x","purpose":"check_in"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(user, pass)
		return doRequest(t, req)
	}
	token := func(user, pass string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.base+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=openid"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		return doRequest(t, req)
	}

	t.Run("discovery publishes introspection and revocation auth methods", func(t *testing.T) {
		resp, body := doRequest(t, newRequest(t, "GET", s.base+"/.well-known/openid-configuration"))
		var d map[string]any
		if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		for _, k := range []string{"introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			if m, _ := d[k].([]any); len(m) < 3 {
				t.Errorf("%s = %v", k, d[k])
			}
		}
	})

	t.Run("face verify needs identity:face_verify", func(t *testing.T) {
		resp, body := faceVerify(hotel, hotelSecret)
		if resp.StatusCode != 403 || !strings.Contains(body, `"face_verify_not_allowed"`) {
			t.Fatalf("hotel: %d %s", resp.StatusCode, body)
		}
		// The registered client gets past authorization (its photo is junk: 4xx of the image, not 401/403).
		resp, body = faceVerify(facer, facerSecret)
		if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode >= 500 {
			t.Fatalf("registered client: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("failures at the token endpoint limit the address everywhere", func(t *testing.T) {
		// Last: it limits this test's address (127.0.0.1) for a minute.
		for i := range 40 {
			resp, body := token(hotel, fmt.Sprint("guess-", i))
			if resp.StatusCode == 429 {
				break
			}
			if resp.StatusCode != 401 {
				t.Fatalf("guess %d: %d %s", i, resp.StatusCode, body)
			}
		}
		retry := func(t *testing.T, resp *http.Response) {
			t.Helper()
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
		resp, body := token(hotel, hotelSecret)
		if resp.StatusCode != 429 || !strings.Contains(body, `"temporarily_unavailable"`) {
			t.Fatalf("token with the correct secret: %d %s", resp.StatusCode, body)
		}
		retry(t, resp)
		resp, body = certVerify(hotel, hotelSecret)
		if resp.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) {
			t.Fatalf("certs verify with the correct secret: %d %s", resp.StatusCode, body)
		}
		retry(t, resp)
		resp, body = faceVerify(facer, facerSecret)
		if resp.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) {
			t.Fatalf("face verify with the correct secret: %d %s", resp.StatusCode, body)
		}
		retry(t, resp)
	})
}

func newRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func doRequest(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
