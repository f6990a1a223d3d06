package identity_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// tokenAuth maps bearer tokens to callers.
type tokenAuth map[string]identity.Caller

func (a tokenAuth) Authenticate(r *http.Request) (identity.Caller, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "limited" {
		return identity.Caller{}, fmt.Errorf("too many failures: %w", httperr.RateLimited(7*time.Second))
	}
	c, ok := a[tok]
	if !ok {
		return identity.Caller{}, errors.New("unknown token")
	}
	return c, nil
}

var callers = tokenAuth{
	"app":     {ID: "client:app", FaceVerify: true},
	"app2":    {ID: "client:app2", FaceVerify: true},
	"svc":     {ID: "client:svc", Trusted: true, FaceVerify: true},
	"admin":   {ID: "admin", Trusted: true, Admin: true, FaceVerify: true},
	"hotel":   {ID: "client:hotel"},                     // a client not registered for face verification
	"limited": {ID: "client:limited", FaceVerify: true}, // refused by tokenAuth with 429
}

type apiFixture struct {
	*fixture
	h http.Handler
}

func newAPI(t *testing.T, limit int) *apiFixture {
	t.Helper()
	f := newFixture(t)
	lim := memory.New(memory.Options{Now: f.clock.Now})
	t.Cleanup(func() { lim.Close() })
	h, err := identity.NewHandler(identity.HTTPConfig{
		Service: f.svc, Auth: callers, Limiter: lim, VerifyLimit: limit, VerifyWindow: time.Minute,
		MaxImageBytes: 64, MaxImportRows: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &apiFixture{fixture: f, h: h}
}

type field struct{ name, filename, value string }

func multipartBody(t *testing.T, fields ...field) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		var (
			pw  io.Writer
			err error
		)
		if f.filename != "" {
			pw, err = w.CreateFormFile(f.name, f.filename)
		} else {
			pw, err = w.CreateFormField(f.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte(f.value))
	}
	w.Close()
	return &b, w.FormDataContentType()
}

func (a *apiFixture) do(t *testing.T, path, token string, fields ...field) (int, map[string]any, http.Header) {
	t.Helper()
	body, ct := multipartBody(t, fields...)
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.Header.Set("Content-Type", ct)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: body %q: %v", path, rec.Body.String(), err)
	}
	return rec.Code, m, rec.Header()
}

func (a *apiFixture) importAll(t *testing.T, csv string, pics map[string]string) map[string]any {
	t.Helper()
	fields := []field{{"csv", "register.csv", csv}}
	for name, v := range pics {
		fields = append(fields, field{"photo", name, v})
	}
	code, m, _ := a.do(t, identity.PathImport, "admin", fields...)
	if code != http.StatusOK {
		t.Fatalf("import: %d %v", code, m)
	}
	return m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestHTTPImport(t *testing.T) {
	a := newAPI(t, 100)
	csv := "id_number,name,photo\n" + testID(t, 1) + ",Alice,a.jpg\n" + testID(t, 2) + ",Bob,missing.jpg\n"
	m := a.importAll(t, csv, map[string]string{"a.jpg": "face:alice"})
	if m["imported"] != 1.0 || m["failed"] != 1.0 {
		t.Errorf("report %v", m)
	}
	m = a.importAll(t, csv, map[string]string{"a.jpg": "face:alice"})
	if m["unchanged"] != 1.0 || m["imported"] != 0.0 {
		t.Errorf("re-import report %v", m)
	}

	tooMany := "id_number,name,photo\n" + strings.Repeat(testID(t, 3)+",X,x.jpg\n", 11)
	tests := []struct {
		name   string
		token  string
		fields []field
		status int
		code   string
	}{
		{"no token", "", []field{{"csv", "r.csv", csv}}, 401, "unauthorized"},
		{"not admin", "svc", []field{{"csv", "r.csv", csv}}, 403, "forbidden"},
		{"no csv", "admin", []field{{"photo", "a.jpg", "face:alice"}}, 400, "invalid_request"},
		{"bad header", "admin", []field{{"csv", "r.csv", "id,name\n1,2\n"}}, 400, "invalid_csv"},
		{"too many rows", "admin", []field{{"csv", "r.csv", tooMany}}, 400, "invalid_csv"},
		{"photo too large", "admin", []field{{"csv", "r.csv", csv}, {"photo", "a.jpg", strings.Repeat("x", 65)}}, 413, "image_too_large"},
		{"hidden photo name", "admin", []field{{"csv", "r.csv", csv}, {"photo", ".a.jpg", "face:alice"}}, 400, "invalid_request"},
		{"unknown part", "admin", []field{{"csv", "r.csv", csv}, {"extra", "", "x"}}, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m, _ := a.do(t, identity.PathImport, tt.token, tt.fields...)
			if code != tt.status || errCode(m) != tt.code {
				t.Errorf("got %d %q, want %d %q (%v)", code, errCode(m), tt.status, tt.code, m)
			}
		})
	}
}

// TestHTTPVerifyCallers: only callers registered for face verification
// get an answer (issue 16 point 8); a caller refused with its own answer
// (a limited client) gets that answer, not 401.
func TestHTTPVerifyCallers(t *testing.T) {
	a := newAPI(t, 100)
	a.importAll(t, "id_number,name,photo\n"+testID(t, 1)+",Alice,a.jpg\n", map[string]string{"a.jpg": "face:alice"})
	tests := []struct {
		name, token string
		status      int
		code        string
	}{
		{"registered client", "app", 200, ""},
		{"admin", "admin", 200, ""},
		{"client not registered", "hotel", 403, identity.CodeVerifyNotAllowed},
		{"unknown caller", "nobody", 401, httperr.CodeUnauthorized},
		{"limited caller", "limited", 429, httperr.CodeRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m, h := a.do(t, identity.PathVerify, tt.token, field{"id_number", "", testID(t, 1)}, field{"photo", "p.jpg", "face:alice"})
			if code != tt.status || errCode(m) != tt.code {
				t.Fatalf("got %d %q, want %d %q (%v)", code, errCode(m), tt.status, tt.code, m)
			}
			if code == 200 && m["match"] != true {
				t.Fatalf("answer %v", m)
			}
			if code == 429 && h.Get("Retry-After") != "7" {
				t.Fatalf("Retry-After %q", h.Get("Retry-After"))
			}
		})
	}
}

func TestHTTPVerifyEnumerationSafe(t *testing.T) {
	a := newAPI(t, 100)
	a.importAll(t, "id_number,name,photo\n"+testID(t, 1)+",Alice,a.jpg\n", map[string]string{"a.jpg": "face:alice"})
	verify := func(token, id, photo string) (int, map[string]any) {
		code, m, _ := a.do(t, identity.PathVerify, token, field{"id_number", "", id}, field{"photo", "p.jpg", photo})
		return code, m
	}

	// Untrusted: a wrong face and an unknown ID number give byte-identical answers.
	c1, noMatch := verify("app", testID(t, 1), "face:mallory")
	c2, unknown := verify("app", testID(t, 77), "face:mallory")
	if c1 != 200 || c2 != 200 || noMatch["match"] != false {
		t.Fatalf("untrusted: %d %v / %d %v", c1, noMatch, c2, unknown)
	}
	j1, _ := json.Marshal(noMatch)
	j2, _ := json.Marshal(unknown)
	if !bytes.Equal(j1, j2) {
		t.Errorf("unknown ID answer %s differs from no-match answer %s", j2, j1)
	}
	// A disabled citizen and a citizen without a reference template look
	// the same too.
	a.importAll(t, "id_number,name,photo\n"+testID(t, 2)+",Bob,b.jpg\n", map[string]string{"b.jpg": "face:bob"})
	bob, err := a.svc.ResolveIDNumber(t.Context(), testID(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Citizens().Update(t.Context(), bob, func(c *store.Citizen) error { c.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.store.Citizens().Create(t.Context(), &store.Citizen{ID: "noref", IDNumber: testID(t, 3), Name: "No Ref"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{testID(t, 2), testID(t, 3)} {
		_, m := verify("app", id, "face:mallory")
		if j, _ := json.Marshal(m); !bytes.Equal(j, j1) {
			t.Errorf("answer %s differs from no-match answer %s", j, j1)
		}
	}
	if code, m := verify("svc", testID(t, 2), "face:bob"); code != 403 || errCode(m) != "citizen_disabled" {
		t.Errorf("trusted, disabled: %d %v", code, m)
	}
	if code, m := verify("svc", testID(t, 3), "face:bob"); code != 409 || errCode(m) != "no_reference" {
		t.Errorf("trusted, no reference: %d %v", code, m)
	}
	// Untrusted callers never see scores.
	_, m := verify("app", testID(t, 1), "face:alice:3")
	if m["match"] != true || m["score"] != nil || m["threshold"] != nil || m["citizen_id"] != nil {
		t.Errorf("untrusted match answer %v", m)
	}

	tests := []struct {
		name   string
		token  string
		id     string
		photo  string
		status int
		code   string
		match  any
	}{
		{"trusted match with score", "svc", testID(t, 1), "face:alice:3", 200, "", true},
		{"trusted no match", "svc", testID(t, 1), "face:bob", 200, "", false},
		{"trusted unknown id", "svc", testID(t, 77), "face:alice", 404, "unknown_id_number", nil},
		{"malformed id (public arithmetic, not an oracle)", "app", "123456", "face:alice", 400, "invalid_id_number", nil},
		{"no face", "app", testID(t, 1), "noface", 422, "no_face", nil},
		{"several faces", "app", testID(t, 1), "several", 422, "several_faces", nil},
		{"garbage image", "app", testID(t, 1), "garbage", 422, "bad_image", nil},
		{"photo too large", "app", testID(t, 1), strings.Repeat("x", 65), 413, "image_too_large", nil},
		{"no token", "", testID(t, 1), "face:alice", 401, "unauthorized", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := verify(tt.token, tt.id, tt.photo)
			if code != tt.status || errCode(m) != tt.code {
				t.Fatalf("got %d %q, want %d %q (%v)", code, errCode(m), tt.status, tt.code, m)
			}
			if tt.match != nil && m["match"] != tt.match {
				t.Errorf("match %v, want %v", m["match"], tt.match)
			}
			if tt.token == "svc" && tt.status == 200 && (m["score"] == nil || m["threshold"] != 0.34 || m["operating_point"] != identity.DefaultOperatingPoint) {
				t.Errorf("trusted answer lacks score/threshold: %v", m)
			}
		})
	}
}

func TestHTTPEnroll(t *testing.T) {
	a := newAPI(t, 100)
	a.importAll(t, "id_number,name,photo\n"+testID(t, 1)+",Alice,a.jpg\n"+testID(t, 2)+",Bob,b.jpg\n",
		map[string]string{"a.jpg": "face:alice", "b.jpg": "face:bob"})
	enroll := func(token, photo string) (int, map[string]any) {
		code, m, _ := a.do(t, identity.PathVerify, token,
			field{"id_number", "", testID(t, 1)}, field{"photo", "p.jpg", photo}, field{"enroll", "", "true"})
		return code, m
	}
	if code, m := enroll("app", "face:alice:1"); code != 403 {
		t.Errorf("untrusted enroll: %d %v", code, m)
	}
	code, m := enroll("svc", "face:alice:1")
	if code != 200 || m["enrolled_template_id"] == nil {
		t.Errorf("trusted enroll: %d %v", code, m)
	}
	if code, m := enroll("svc", "mix:alice:bob"); code != 409 || errCode(m) != "duplicate_identity" {
		t.Errorf("duplicate enroll: %d %v", code, m)
	}
	if code, m := enroll("svc", "face:bob"); code != 200 || m["match"] != false || m["enrolled_template_id"] != nil {
		t.Errorf("no-match enroll: %d %v", code, m)
	}
	if a.index.Len() != 3 {
		t.Errorf("index %d, want 3", a.index.Len())
	}
}

func TestHTTPRateLimit(t *testing.T) {
	a := newAPI(t, 2)
	a.importAll(t, "id_number,name,photo\n"+testID(t, 1)+",Alice,a.jpg\n", map[string]string{"a.jpg": "face:alice"})
	verify := func(token string) (int, http.Header) {
		code, _, h := a.do(t, identity.PathVerify, token, field{"id_number", "", testID(t, 1)}, field{"photo", "p.jpg", "face:alice"})
		return code, h
	}
	for i := range 2 {
		if code, _ := verify("app"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	code, h := verify("app")
	if code != 429 || h.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	// Limits are per caller.
	if code, _ := verify("app2"); code != 200 {
		t.Errorf("other caller: %d", code)
	}
	a.clock.Advance(61 * time.Second)
	if code, _ := verify("app"); code != 200 {
		t.Errorf("after the window: %d", code)
	}
}
