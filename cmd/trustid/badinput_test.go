package main

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFaceLoginBadInput drives the real binary's face login with malformed
// requests (issue #16, points 5 and 6): each is a 4xx with a stable code in
// the JSON error contract, none is a failed identity check, and none counts
// toward the lockout (a begin afterwards still gets digits).
func TestFaceLoginBadInput(t *testing.T) {
	needModels(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		skipOrFail(t, "ffmpeg not installed")
	}
	dataDir := t.TempDir()
	env := []string{"TRUSTID_CONFIG=", "TRUSTID_DATA_DIR=" + dataDir, "TRUSTID_TEST_MODE=1"}
	app := newE2EApp(t)
	out := runTrustid(t, append(os.Environ(), env...), "client", "create", "-name", "Bad Input App",
		"-redirect-uri", app.srv.URL+"/callback", "-scopes", "openid", "-grant-types", "authorization_code")
	var client struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal(out, &client); err != nil || client.ID == "" {
		t.Fatalf("client create: %q %v", out, err)
	}
	s := startServer(t, env...)
	browser := newBrowser(t)
	resp, err := browser.Get(s.base + "/oauth2/auth?response_type=code&client_id=" + client.ID +
		"&redirect_uri=" + app.srv.URL + "/callback&scope=openid&state=s1234567&code_challenge_method=S256&code_challenge=" +
		strings.Repeat("A", 43))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.Request.URL.Path != "/oauth2/login" {
		t.Fatalf("authorize ended at %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	id := e2eIDNumber(t)
	begin := func(t *testing.T) string {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"id_number": id, "device": "bad-input-test-device", "face_consent": true})
		req, _ := http.NewRequest("POST", s.base+"/oauth2/login/face/begin", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", s.base)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		var ch struct {
			ID string `json:"challenge_id"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &ch) != nil || ch.ID == "" {
			t.Fatalf("begin: %d %s", resp.StatusCode, body)
		}
		return ch.ID
	}
	form := func(fields map[string]string, video []byte) (string, *bytes.Buffer) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("face_consent", "yes") // the page's face consent screen
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if video != nil {
			fw, _ := mw.CreateFormFile("video", "clip.webm")
			fw.Write(video)
		}
		mw.Close()
		return mw.FormDataContentType(), &buf
	}
	// A small WebM that declares 2400x1400 pictures: refused from its header.
	bomb := filepath.Join(t.TempDir(), "bomb.webm")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=2400x1400:d=0.4:r=5",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "50k", "-y", bomb).CombinedOutput(); err != nil {
		t.Fatalf("make the bomb: %v %s", err, b)
	}
	bombBytes, _ := os.ReadFile(bomb)

	cases := []struct {
		name   string
		body   func(t *testing.T) (ctype string, body *bytes.Buffer)
		header map[string]string
		status int
		code   string
	}{
		{"not multipart", func(*testing.T) (string, *bytes.Buffer) {
			return "application/json", bytes.NewBufferString(`{"video":"x"}`)
		}, nil, 400, "invalid_evidence"},
		{"empty multipart", func(*testing.T) (string, *bytes.Buffer) {
			return "multipart/form-data; boundary=x", bytes.NewBufferString("--x--\r\n")
		}, nil, 400, "invalid_evidence"},
		{"broken multipart", func(*testing.T) (string, *bytes.Buffer) {
			return "multipart/form-data; boundary=x", bytes.NewBufferString("--x\r\nContent-Disposition: form-data; name=\"challenge_id\"\r\n\r\nabc")
		}, nil, 400, "invalid_evidence"},
		{"challenge but no video", func(*testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": "nope", "id_number": id}, nil)
		}, nil, 400, "invalid_evidence"},
		{"invalid UTF-8 in a field", func(*testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": "ab\xff\xfe", "id_number": id}, []byte("x"))
		}, nil, 400, "invalid_evidence"},
		{"unknown challenge", func(*testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": "no-such-challenge", "id_number": id}, []byte("not a video"))
		}, nil, 400, "challenge_refused"},
		{"unreadable video", func(t *testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": begin(t), "id_number": id}, bytes.Repeat([]byte("junk"), 1000))
		}, nil, 400, "invalid_evidence"},
		{"decode bomb", func(t *testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": begin(t), "id_number": id}, bombBytes)
		}, nil, 400, "invalid_evidence"},
		{"oversize body", func(*testing.T) (string, *bytes.Buffer) {
			return form(map[string]string{"challenge_id": "x"}, make([]byte, 33<<20))
		}, nil, 413, "body_too_large"},
		{"huge header", func(*testing.T) (string, *bytes.Buffer) {
			return "multipart/form-data; boundary=x", bytes.NewBufferString("--x--\r\n")
		}, map[string]string{"X-Padding": strings.Repeat("a", 2<<20)}, 431, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctype, body := tc.body(t)
			req, _ := http.NewRequest("POST", s.base+"/oauth2/login/face/finish", body)
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Origin", s.base)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, got)
			}
			if tc.code == "" {
				return
			}
			var e apiError
			if err := json.Unmarshal([]byte(got), &e); err != nil || e.Error.Code != tc.code || e.Error.RequestID == "" {
				t.Fatalf("answer %.300s, want code %q with a request id", got, tc.code)
			}
		})
	}
	// None of the above was a judged attempt: the device is not locked out.
	begin(t)
}
