package httperr

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type payload struct {
	Name  string            `json:"name"`
	Age   int               `json:"age"`
	Tags  []string          `json:"tags"`
	Inner *inner            `json:"inner"`
	When  time.Time         `json:"when"`
	Meta  map[string]string `json:"meta"`
	Blob  []byte            `json:"blob"`
	OK    bool              `json:"ok"`
}

type inner struct {
	Level uint8 `json:"level"`
}

func jsonRequest(body, contentType string) *http.Request {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

var decodeCases = []struct {
	name        string
	body        string
	contentType string
	max         int64
	wantStatus  int // 0: success
	wantCode    string
	wantMsg     string // substring of the client message
}{
	{"ok", `{"name":"a","age":3,"tags":["x"],"inner":{"level":2},"when":"2026-01-01T00:00:00Z","ok":true}`, "application/json", 0, 0, "", ""},
	{"ok with charset and whitespace", " {\"name\":\"a\"} \n\t", "application/json; charset=UTF-8", 0, 0, "", ""},
	{"ok +json", `{}`, "application/merge-patch+json", 0, 0, "", ""},
	{"no content type", `{}`, "", 0, 415, CodeUnsupportedMediaType, "application/json"},
	{"form content type", `{}`, "application/x-www-form-urlencoded", 0, 415, CodeUnsupportedMediaType, ""},
	{"text/json", `{}`, "text/json", 0, 415, CodeUnsupportedMediaType, ""},
	{"latin1", `{}`, "application/json; charset=latin1", 0, 415, CodeUnsupportedMediaType, ""},
	{"bad media type", `{}`, "application/json; =", 0, 415, CodeUnsupportedMediaType, ""},
	{"empty", ``, "application/json", 0, 400, CodeInvalidJSON, "empty"},
	{"only whitespace", "  \n", "application/json", 0, 400, CodeInvalidJSON, "empty"},
	{"truncated", `{"name":"a"`, "application/json", 0, 400, CodeInvalidJSON, "ends inside"},
	{"syntax", `{"name":"a",}`, "application/json", 0, 400, CodeInvalidJSON, "offset 13"},
	{"unknown field", `{"nme":"a"}`, "application/json", 0, 400, CodeInvalidJSON, `unknown field "nme"`},
	{"unknown nested field", `{"inner":{"lvl":1}}`, "application/json", 0, 400, CodeInvalidJSON, `unknown field "lvl"`},
	{"long unknown field", `{"` + strings.Repeat("x", 500) + `":1}`, "application/json", 0, 400, CodeInvalidJSON, "..."},
	{"wrong type", `{"age":"three"}`, "application/json", 0, 400, CodeInvalidJSON, `field "age" must be an integer, not string`},
	{"nested wrong type", `{"inner":{"level":300}}`, "application/json", 0, 400, CodeInvalidJSON, `field "inner.level" must be an integer`},
	{"array wanted", `{"tags":"x"}`, "application/json", 0, 400, CodeInvalidJSON, `field "tags" must be an array`},
	{"top level array", `[1,2]`, "application/json", 0, 400, CodeInvalidJSON, "must be an object"},
	{"bad time", `{"when":"yesterday"}`, "application/json", 0, 400, CodeInvalidJSON, "invalid value"},
	{"bad base64", `{"blob":"!!"}`, "application/json", 0, 400, CodeInvalidJSON, ""},
	{"two values", `{"name":"a"}{"name":"b"}`, "application/json", 0, 400, CodeInvalidJSON, "single JSON value"},
	{"trailing garbage", `{"name":"a"} x`, "application/json", 0, 400, CodeInvalidJSON, "single JSON value"},
	{"too large", `{"name":"` + strings.Repeat("a", 100) + `"}`, "application/json", 50, 413, CodeBodyTooLarge, "50 bytes"},
	{"too large after value", `{"name":"a"}` + strings.Repeat(" ", 100) + `{}`, "application/json", 50, 413, CodeBodyTooLarge, ""},
	{"exactly at the limit", `{"name":"abc"}`, "application/json", 14, 0, "", ""},
}

func TestDecodeJSON(t *testing.T) {
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			var dst payload
			err := DecodeJSON(jsonRequest(c.body, c.contentType), &dst, c.max)
			if c.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if he.Status != c.wantStatus || he.Code != c.wantCode || !strings.Contains(he.Message, c.wantMsg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", he.Status, he.Code, he.Message, c.wantStatus, c.wantCode, c.wantMsg)
			}
			if len(he.Message) > 200 {
				t.Errorf("message is %d bytes long", len(he.Message))
			}
		})
	}
}

func TestDecodeJSONValues(t *testing.T) {
	var dst payload
	err := DecodeJSON(jsonRequest(`{"name":"ä","inner":{"level":7},"meta":{"k":"v"}}`, "application/json"), &dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Name != "ä" || dst.Inner == nil || dst.Inner.Level != 7 || dst.Meta["k"] != "v" {
		t.Fatalf("decoded %+v", dst)
	}
}

func TestDecodeJSONBadDestination(t *testing.T) {
	var dst payload
	err := DecodeJSON(jsonRequest(`{}`, "application/json"), dst, 0) // not a pointer
	var he *Error
	if !errors.As(err, &he) || he.Status != 500 {
		t.Fatalf("err = %v, want a 500", err)
	}
}

func TestDecodeJSONDefaultLimit(t *testing.T) {
	body := `{"name":"` + strings.Repeat("a", DefaultMaxBytes) + `"}`
	var dst payload
	err := DecodeJSON(jsonRequest(body, "application/json"), &dst, 0)
	var he *Error
	if !errors.As(err, &he) || he.Status != 413 {
		t.Fatalf("err = %v, want 413 at the default limit", err)
	}
}

func TestDecodeJSONNilBody(t *testing.T) {
	r := jsonRequest("", "application/json")
	r.Body = nil
	var dst payload
	if err := DecodeJSON(r, &dst, 0); err == nil {
		t.Fatal("nil body decoded")
	}
}

// FuzzDecodeJSON: any body either decodes or yields a 4xx *Error with a
// bounded message; never a panic or a 500.
func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.body), c.contentType)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(string(body))))
		r.Header.Set("Content-Type", contentType)
		var dst payload
		err := DecodeJSON(r, &dst, 256)
		if err == nil {
			if len(body) > 256 {
				t.Fatalf("accepted a %d-byte body over the limit", len(body))
			}
			if _, merr := json.Marshal(dst); merr != nil {
				t.Fatalf("decoded value does not marshal: %v", merr)
			}
			return
		}
		var he *Error
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, not an *Error", err)
		}
		if he.Status < 400 || he.Status >= 500 {
			t.Fatalf("status %d for client input: %v", he.Status, err)
		}
		if len(he.Message) > 300 {
			t.Fatalf("message of %d bytes", len(he.Message))
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	body := `{"name":"a","age":3,"tags":["x","y"],"inner":{"level":2},"ok":true}`
	b.ReportAllocs()
	for b.Loop() {
		var dst payload
		if err := DecodeJSON(jsonRequest(body, "application/json"), &dst, 0); err != nil {
			b.Fatal(err)
		}
	}
}
