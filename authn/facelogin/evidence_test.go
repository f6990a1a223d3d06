package facelogin

import (
	"bytes"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBeginIDNumber(t *testing.T) {
	tests := []struct {
		name, body string
		want       string
		wantErr    bool
	}{
		{name: "typed id number", body: `{"id_number":"11010519491231002X"}`, want: "11010519491231002X"},
		{name: "empty body uses login_hint", body: ``, want: ""},
		{name: "empty object", body: `{}`, want: ""},
		{name: "malformed JSON", body: `{"id_number":`, wantErr: true},
		{name: "unknown field", body: `{"idnum":"x"}`, wantErr: true},
		{name: "too long", body: `{"id_number":"` + strings.Repeat("1", 65) + `"}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth2/login/face/begin", strings.NewReader(tc.body))
			got, err := beginIDNumber(r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadEvidence(t *testing.T) {
	type part struct{ name, file, body string }
	build := func(parts []part) (*multipart.Writer, *bytes.Buffer) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, p := range parts {
			if p.file != "" {
				fw, _ := w.CreateFormFile(p.name, p.file)
				fw.Write([]byte(p.body))
			} else {
				w.WriteField(p.name, p.body)
			}
		}
		w.Close()
		return w, &buf
	}
	tests := []struct {
		name    string
		parts   []part
		wantErr string
		frames  int
	}{
		{name: "video", parts: []part{{name: "challenge_id", body: "c1"}, {name: "video", file: "v.webm", body: "webm"}}},
		{name: "frames with audio", frames: 2, parts: []part{{name: "challenge_id", body: "c1"}, {name: "timestamps_ms", body: "40, 0"},
			{name: "frame", file: "a.jpg", body: "a"}, {name: "frame", file: "b.jpg", body: "b"}, {name: "audio", file: "a.wav", body: "RIFF"}}},
		{name: "missing challenge", parts: []part{{name: "video", file: "v.webm", body: "webm"}}, wantErr: "missing challenge_id"},
		{name: "frames without audio", parts: []part{{name: "challenge_id", body: "c"}, {name: "timestamps_ms", body: "0"}, {name: "frame", file: "a.jpg", body: "a"}}, wantErr: "without audio"},
		{name: "timestamp count mismatch", parts: []part{{name: "challenge_id", body: "c"}, {name: "timestamps_ms", body: "0,1"}, {name: "frame", file: "a.jpg", body: "a"}, {name: "audio", file: "a.wav", body: "R"}}, wantErr: "timestamps"},
		{name: "bad timestamp", parts: []part{{name: "challenge_id", body: "c"}, {name: "timestamps_ms", body: "-5"}}, wantErr: "bad timestamp"},
		{name: "unknown field", parts: []part{{name: "challenge_id", body: "c"}, {name: "x", body: "y"}}, wantErr: "unknown field"},
		{name: "oversize video", parts: []part{{name: "challenge_id", body: "c"}, {name: "video", file: "v", body: strings.Repeat("v", 101)}}, wantErr: "larger than"},
		{name: "too many frames", parts: []part{{name: "challenge_id", body: "c"}, {name: "frame", file: "1", body: "a"}, {name: "frame", file: "2", body: "a"}, {name: "frame", file: "3", body: "a"}, {name: "frame", file: "4", body: "a"}}, wantErr: "more than 3 frames"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, buf := build(tc.parts)
			r := httptest.NewRequest("POST", "/finish", buf)
			r.Header.Set("Content-Type", w.FormDataContentType())
			mr, err := r.MultipartReader()
			if err != nil {
				t.Fatal(err)
			}
			ev, err := readEvidence(mr, 100, 3)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.frames) != tc.frames {
				t.Fatalf("%d frames, want %d", len(ev.frames), tc.frames)
			}
			if tc.frames > 1 && ev.frames[0].T > ev.frames[1].T {
				t.Fatal("frames not ordered by time")
			}
		})
	}
}

// FuzzReadEvidence feeds arbitrary multipart bodies to the evidence parser:
// it must never panic, and what it accepts keeps the limits.
func FuzzReadEvidence(f *testing.F) {
	f.Add("--b\r\nContent-Disposition: form-data; name=\"challenge_id\"\r\n\r\nc1\r\n--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v\"\r\n\r\nwebm\r\n--b--\r\n")
	f.Add("--b\r\nContent-Disposition: form-data; name=\"challenge_id\"\r\n\r\nc\r\n--b\r\nContent-Disposition: form-data; name=\"timestamps_ms\"\r\n\r\n40,0\r\n--b\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"a\"\r\n\r\na\r\n--b\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"b\"\r\n\r\nb\r\n--b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--b--\r\n")
	f.Add("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--b--\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		ev, err := readEvidence(multipart.NewReader(strings.NewReader(body), "b"), 100, 3)
		if err != nil {
			return
		}
		if ev.challengeID == "" || len(ev.video) > 100 || len(ev.wav) > 100 || len(ev.frames) > 3 {
			t.Fatalf("accepted evidence beyond the limits: %d video bytes, %d wav bytes, %d frames", len(ev.video), len(ev.wav), len(ev.frames))
		}
	})
}

// FuzzBeginIDNumber: the begin body parser never panics and never returns
// an over-long id number.
func FuzzBeginIDNumber(f *testing.F) {
	for _, s := range []string{`{"id_number":"11010519491231002X"}`, ``, `{}`, `{"id_number":`, `{"idnum":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := beginIDNumber(httptest.NewRequest("POST", "/begin", strings.NewReader(body)))
		if err == nil && len(got) > 64 {
			t.Fatalf("id number of %d bytes accepted", len(got))
		}
	})
}
