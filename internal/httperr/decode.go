package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// DefaultMaxBytes is the body limit DecodeJSON uses when given maxBytes <= 0.
const DefaultMaxBytes = 1 << 20

// maxEcho bounds how much of a client-supplied name an error message repeats.
const maxEcho = 64

// DecodeJSON decodes the request body into dst, strictly: the Content-Type
// must be application/json (or a +json type; a charset other than UTF-8 is
// refused), the body at most maxBytes (DefaultMaxBytes if <= 0), unknown
// fields are an error, and the body must hold exactly one JSON value. The
// errors are *Error values ready for Write: 415 unsupported_media_type, 413
// body_too_large, or 400 invalid_json whose message names the offending
// field or byte offset. A dst that cannot be decoded into is a 500 (a bug).
func DecodeJSON(r *http.Request, dst any, maxBytes int64) error {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, dec)
	}
	// Anything but whitespace after the value is an error.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit, err)
		}
	}
	return invalid(nil, "request body must contain a single JSON value")
}

func checkContentType(ct string) error {
	unsupported := func(cause error) error {
		return Wrap(cause, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Content-Type must be application/json")
	}
	if ct == "" {
		return unsupported(errors.New("no Content-Type"))
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return unsupported(err)
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return unsupported(fmt.Errorf("media type %q", mt))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported(fmt.Errorf("charset %q", cs))
	}
	return nil
}

func invalid(cause error, format string, args ...any) *Error {
	return Wrap(cause, http.StatusBadRequest, CodeInvalidJSON, fmt.Sprintf(format, args...))
}

func decodeError(err error, dec *json.Decoder) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		iue *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit, err)
	case errors.Is(err, io.EOF):
		return invalid(err, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(err, "request body ends inside a JSON value")
	case errors.As(err, &se):
		return invalid(err, "malformed JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return invalid(err, "request body must be %s, not %s", jsonKind(te.Type), echo(te.Value))
		}
		return invalid(err, "field %q must be %s, not %s (offset %d)", echo(te.Field), jsonKind(te.Type), echo(te.Value), te.Offset)
	case errors.As(err, &iue):
		return Internal(fmt.Errorf("httperr: DecodeJSON destination: %w", err))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if s, uerr := strconv.Unquote(name); uerr == nil {
			name = s
		}
		return invalid(err, "unknown field %q", echo(name))
	}
	// A field's own UnmarshalJSON (time.Time, custom types) refused its value.
	return invalid(err, "invalid value near offset %d", dec.InputOffset())
}

// echo bounds client-supplied text repeated in a message.
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return strings.ToValidUTF8(s[:maxEcho], "") + "..."
}

// jsonKind names the JSON type a Go type decodes from, so messages speak
// JSON rather than Go.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a valid value"
}
