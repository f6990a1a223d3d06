package identity_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/httperr"
)

// apiCodes are the machine codes the identity API answers a refusal with.
var apiCodes = []string{
	httperr.CodeInvalidRequest, httperr.CodeInvalidJSON, httperr.CodeBodyTooLarge, httperr.CodeUnsupportedMediaType,
	httperr.CodeUnauthorized, httperr.CodeForbidden, httperr.CodeNotFound, httperr.CodeConflict, httperr.CodeRateLimited,
	identity.CodeInvalidIDNumber, identity.CodeUnknownIDNumber, identity.CodeCitizenDisabled, identity.CodeNoReference,
	identity.CodeDuplicateIdentity, identity.CodeBadImage, identity.CodeImageTooLarge, identity.CodeNoFace,
	identity.CodeSeveralFaces, identity.CodePoorQuality, identity.CodeInvalidCSV,
}

// fuzzAPI is the HTTP API over the SQLite fixture (in a temporary
// directory) and the fake embedder, with a limit no fuzz run reaches.
func fuzzAPI(tb testing.TB) http.Handler {
	tb.Helper()
	f := newFixture(tb)
	lim := memory.New(memory.Options{Now: f.clock.Now})
	tb.Cleanup(func() { lim.Close() })
	h, err := identity.NewHandler(identity.HTTPConfig{
		Service: f.svc, Auth: callers, Limiter: lim, VerifyLimit: 1 << 30, VerifyWindow: time.Minute,
		MaxImageBytes: 64, MaxImportRows: 10,
	})
	if err != nil {
		tb.Fatal(err)
	}
	// A registered citizen, so verify seeds reach the match path.
	body, ct := fuzzMultipart(tb, field{"csv", "r.csv", "id_number,name,photo\n" + testID(tb, 1) + ",Alice,a.jpg\n"},
		field{"photo", "a.jpg", "face:alice"})
	if code, raw := serveFuzz(h, identity.PathImport, "admin", ct, body); code != http.StatusOK {
		tb.Fatalf("import: %d %s", code, raw)
	}
	return h
}

// fuzzMultipart is multipartBody for a testing.TB.
func fuzzMultipart(tb testing.TB, fields ...field) ([]byte, string) {
	tb.Helper()
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
			tb.Fatal(err)
		}
		io.WriteString(pw, f.value)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

func serveFuzz(h http.Handler, path, token, ctype string, body []byte) (int, string) {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String()
}

// checkAPIAnswer fails unless the answer is JSON, below 500, and a refusal
// carries one of the API's codes.
func checkAPIAnswer(t *testing.T, code int, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", code, raw)
	}
	if code >= 500 {
		t.Fatalf("answer %d %s: a malformed request is not a server error", code, raw)
	}
	if code >= 400 && !slices.Contains(apiCodes, errCode(m)) {
		t.Fatalf("answer %d %s: unknown code", code, raw)
	}
	return m
}

// FuzzHTTPVerify: any body and content type at /v1/face/verify, from an
// untrusted or a trusted caller, gets JSON below 500: a verdict or a
// refusal with a stable code; an untrusted caller never sees scores.
func FuzzHTTPVerify(f *testing.F) {
	id := testID(f, 1)
	for _, fields := range [][]field{
		{{"id_number", "", id}, {"photo", "p.jpg", "face:alice"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "face:bob"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "face:alice"}, {"enroll", "", "true"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "face:alice"}, {"enroll", "", "maybe"}},
		{{"id_number", "", testID(f, 2)}, {"photo", "p.jpg", "face:alice"}},
		{{"id_number", "", "123"}, {"photo", "p.jpg", "face:alice"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "noface"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "several"}},
		{{"id_number", "", id}, {"photo", "p.jpg", "blurred"}},
		{{"id_number", "", id}, {"photo", "p.jpg", strings.Repeat("x", 65)}},
		{{"id_number", "", id}},
		{{"id_number", "", id}, {"id_number", "", id}, {"photo", "p.jpg", "face:alice"}},
		{{"extra", "", "x"}},
		{},
	} {
		body, ct := fuzzMultipart(f, fields...)
		f.Add("app", ct, body)
		f.Add("svc", ct, body)
	}
	f.Add("app", "application/json", []byte(`{"id_number":"1"}`))
	f.Add("app", "multipart/form-data", []byte("--x\r\n"))
	f.Add("app", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\nab"))
	f.Add("", "multipart/form-data; boundary=x", []byte("--x--\r\n"))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, token, ctype string, body []byte) {
		code, raw := serveFuzz(h, identity.PathVerify, token, ctype, body)
		m := checkAPIAnswer(t, code, raw)
		if code == http.StatusOK && !callers[token].Trusted {
			for _, k := range []string{"score", "citizen_id", "threshold", "enrolled_template_id"} {
				if _, ok := m[k]; ok {
					t.Fatalf("an untrusted caller sees %s: %s", k, raw)
				}
			}
		}
	})
}

// FuzzHTTPImport: any body and content type at the register import gets
// JSON below 500: a report or a refusal with a stable code.
func FuzzHTTPImport(f *testing.F) {
	csv := "id_number,name,photo\n" + testID(f, 1) + ",Alice,a.jpg\n" + testID(f, 2) + ",Bob,missing.jpg\n"
	for _, fields := range [][]field{
		{{"csv", "r.csv", csv}, {"photo", "a.jpg", "face:alice"}},
		{{"photo", "a.jpg", "face:alice"}},
		{{"csv", "r.csv", "id,name\n1,2\n"}},
		{{"csv", "r.csv", "id_number,name,photo\n" + strings.Repeat(testID(f, 3)+",X,x.jpg\n", 11)}},
		{{"csv", "r.csv", csv}, {"photo", "a.jpg", strings.Repeat("x", 65)}},
		{{"csv", "r.csv", csv}, {"photo", ".a.jpg", "face:alice"}},
		{{"csv", "r.csv", csv}, {"photo", "a.jpg", "face:a"}, {"photo", "a.jpg", "face:b"}},
		{{"csv", "r.csv", csv}, {"extra", "", "x"}},
	} {
		body, ct := fuzzMultipart(f, fields...)
		f.Add(ct, body)
	}
	f.Add("text/csv", []byte(csv))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"csv\"\r\n\r\n"+csv))
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		code, raw := serveFuzz(h, identity.PathImport, "admin", ctype, body)
		checkAPIAnswer(t, code, raw)
	})
}
