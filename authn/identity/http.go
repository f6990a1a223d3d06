package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// Caller is who calls the HTTP API, as the CallerAuthenticator decided.
type Caller struct {
	// ID keys rate limits and the audit log: "client:ID", "admin", or for
	// anonymous callers something like "ip:ADDR".
	ID string
	// Trusted callers (first-party services, the admin) see scores,
	// thresholds and which lookup failed, and may enroll live templates.
	Trusted bool
	// Admin callers may import the register.
	Admin bool
}

// CallerAuthenticator identifies the caller of a request (cmd/trustid wires
// it to the admin token and OAuth client credentials). It returns an error
// to refuse the request with 401, or an *httperr.Error with a 5xx status
// when it cannot decide (e.g. 503 while its client store is down); it may return an untrusted Caller for
// anonymous requests if the deployment allows them.
type CallerAuthenticator interface {
	Authenticate(r *http.Request) (Caller, error)
}

// RateLimiter is the part of ephemeral.Store the API uses.
type RateLimiter interface {
	Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error)
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	Service *Service            // required
	Auth    CallerAuthenticator // required
	Limiter RateLimiter         // required
	// VerifyLimit verifications per caller per VerifyWindow; default 30 per minute.
	VerifyLimit  int
	VerifyWindow time.Duration
	// MaxImageBytes bounds the probe photo; default 4 MiB.
	MaxImageBytes int64
	// MaxImportBytes bounds a whole import upload; default 256 MiB.
	MaxImportBytes int64
	// MaxImportRows bounds the rows (and photos) of one upload; default 10000.
	MaxImportRows int
	Logger        *slog.Logger // default: discard
}

// Paths of the API.
const (
	PathVerify = "/v1/face/verify"
	PathImport = "/v1/admin/register/import"
)

// NewHandler returns the HTTP API:
//
//	POST /v1/face/verify            multipart: id_number, photo (file), enroll ("true")
//	POST /v1/admin/register/import  multipart: csv (file), photo (files, by file name)
//
// Errors use internal/httperr's JSON shape and codes. An untrusted caller
// gets the same 200 {"match": false} for an unknown, disabled or
// unreferenced ID number as for a face that does not match, so the API is
// no oracle for which ID numbers are registered. The probe is embedded
// before the lookup, so both paths pay the engine's ~25 ms; what remains is
// the known path's template read (~0.2 ms, BenchmarkVerify), far inside the
// engine's jitter and further bounded by the per-caller rate limit.
func NewHandler(cfg HTTPConfig) (http.Handler, error) {
	var errs []error
	if cfg.Service == nil {
		errs = append(errs, errors.New("Service is required"))
	}
	if cfg.Auth == nil {
		errs = append(errs, errors.New("Auth is required"))
	}
	if cfg.Limiter == nil {
		errs = append(errs, errors.New("Limiter is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("identity: http config: %w", errors.Join(errs...))
	}
	if cfg.VerifyLimit <= 0 {
		cfg.VerifyLimit = 30
	}
	if cfg.VerifyWindow <= 0 {
		cfg.VerifyWindow = time.Minute
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = DefaultMaxPhotoBytes
	}
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = 256 << 20
	}
	if cfg.MaxImportRows <= 0 {
		cfg.MaxImportRows = 10_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg: cfg, s: cfg.Service}
	mux := http.NewServeMux()
	mux.Handle("POST "+PathVerify, httperr.Handle(cfg.Logger, a.verify))
	mux.Handle("POST "+PathImport, httperr.Handle(cfg.Logger, a.importRegister))
	return mux, nil
}

type api struct {
	cfg HTTPConfig
	s   *Service
}

// verifyResponse is the verify answer. The omitempty fields go to trusted
// callers only.
type verifyResponse struct {
	Match          bool     `json:"match"`
	OperatingPoint string   `json:"operating_point"`
	CitizenID      string   `json:"citizen_id,omitempty"`
	Score          *float32 `json:"score,omitempty"`
	RegisterScore  *float32 `json:"register_score,omitempty"`
	Threshold      *float32 `json:"threshold,omitempty"`
	LiveTemplates  *int     `json:"live_templates,omitempty"`
	Enrolled       string   `json:"enrolled_template_id,omitempty"`
}

// Machine codes of this API beyond httperr's.
const (
	CodeInvalidIDNumber   = "invalid_id_number"
	CodeUnknownIDNumber   = "unknown_id_number"
	CodeCitizenDisabled   = "citizen_disabled"
	CodeNoReference       = "no_reference"
	CodeDuplicateIdentity = "duplicate_identity"
	CodeBadImage          = "bad_image"
	CodeImageTooLarge     = "image_too_large"
	CodeNoFace            = "no_face"
	CodeSeveralFaces      = "several_faces"
	CodePoorQuality       = "poor_quality"
	CodeInvalidCSV        = "invalid_csv"
)

func (a *api) authenticate(r *http.Request) (Caller, error) {
	c, err := a.cfg.Auth.Authenticate(r)
	var he *httperr.Error
	if errors.As(err, &he) && he.Status >= http.StatusInternalServerError {
		// The authenticator could not tell (its client store is down): an
		// outage is not a credential error.
		return Caller{}, he
	}
	if err != nil {
		return Caller{}, httperr.Unauthorized("authentication required").WithCause(err)
	}
	if c.ID == "" {
		return Caller{}, httperr.Internal(errors.New("identity: authenticator returned a caller without id"))
	}
	return c, nil
}

func (a *api) verify(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.authenticate(r)
	if err != nil {
		return err
	}
	ok, retry, err := a.cfg.Limiter.Allow(r.Context(), "face.verify:"+caller.ID, a.cfg.VerifyLimit, a.cfg.VerifyWindow)
	if err != nil {
		return httperr.Unavailable(fmt.Errorf("rate limiter: %w", err))
	}
	if !ok {
		return httperr.RateLimited(retry)
	}
	form, err := readMultipart(w, r, a.cfg.MaxImageBytes+64<<10, func(name string) (int64, int, bool) {
		switch name {
		case "id_number", "enroll":
			return 64, 1, true
		case "photo":
			return a.cfg.MaxImageBytes, 1, true
		}
		return 0, 0, false
	})
	if err != nil {
		return err
	}
	idNumber, photo := form.value("id_number"), form.first("photo")
	if idNumber == "" || photo == nil {
		return httperr.InvalidRequest("id_number and photo are required")
	}
	enroll := false
	if v := form.value("enroll"); v != "" {
		if enroll, err = strconv.ParseBool(v); err != nil {
			return httperr.InvalidRequest("enroll must be true or false")
		}
	}
	if enroll && !caller.Trusted {
		return httperr.Forbidden("enrollment needs a trusted caller")
	}

	d, probe, err := a.s.Verify(r.Context(), idNumber, photo.data)
	if err != nil {
		if he := probeHTTPError(err); he != nil {
			return he
		}
		if errors.Is(err, ErrInvalidIDNumber) {
			return httperr.BadRequest(CodeInvalidIDNumber, "id_number is not a valid ID number").WithCause(err)
		}
		var lookup *httperr.Error
		switch {
		case errors.Is(err, ErrUnknownIDNumber):
			lookup = httperr.New(http.StatusNotFound, CodeUnknownIDNumber, "no citizen has this ID number")
		case errors.Is(err, ErrDisabled):
			lookup = httperr.New(http.StatusForbidden, CodeCitizenDisabled, "the citizen's account is disabled")
		case errors.Is(err, ErrNoReference):
			lookup = httperr.New(http.StatusConflict, CodeNoReference, "the citizen has no reference photo for the current model")
		default:
			return httperr.Internal(err)
		}
		a.s.audit(r.Context(), &store.AuditEvent{Actor: caller.ID, Action: "face.verify", Outcome: lookup.Code})
		if caller.Trusted {
			return lookup
		}
		// Untrusted: indistinguishable from a face that does not match.
		return writeJSON(w, http.StatusOK, verifyResponse{OperatingPoint: a.s.cfg.OperatingPoint})
	}
	outcome := "no_match"
	if d.Match {
		outcome = "match"
	}
	a.s.audit(r.Context(), &store.AuditEvent{Actor: caller.ID, Action: "face.verify", Subject: d.CitizenID, Outcome: outcome,
		Detail: map[string]string{"operating_point": d.OperatingPoint}})

	resp := verifyResponse{Match: d.Match, OperatingPoint: d.OperatingPoint}
	if !caller.Trusted {
		return writeJSON(w, http.StatusOK, resp)
	}
	resp.CitizenID = d.CitizenID
	resp.Score, resp.RegisterScore, resp.Threshold, resp.LiveTemplates = &d.Score, &d.RegisterScore, &d.Threshold, &d.LiveTemplates
	if enroll && d.Match {
		id, err := a.s.Enroll(r.Context(), caller.ID, probe)
		switch {
		case errors.Is(err, ErrDuplicateIdentity):
			return httperr.New(http.StatusConflict, CodeDuplicateIdentity, "the face matches another citizen").WithCause(err)
		case err != nil:
			return httperr.Internal(err)
		}
		resp.Enrolled = id
	}
	return writeJSON(w, http.StatusOK, resp)
}

// probeHTTPError maps a probe quality error to its answer (nil if err is not one).
func probeHTTPError(err error) *httperr.Error {
	var code, msg string
	status := http.StatusUnprocessableEntity
	switch {
	case errors.Is(err, ErrImageTooLarge):
		status, code, msg = http.StatusRequestEntityTooLarge, CodeImageTooLarge, "the image is too large"
	case errors.Is(err, ErrBadImage):
		code, msg = CodeBadImage, "the photo is not a usable JPEG or PNG image"
	case errors.Is(err, ErrNoFace):
		code, msg = CodeNoFace, "no face found in the photo"
	case errors.Is(err, ErrSeveralFaces):
		code, msg = CodeSeveralFaces, "several faces in the photo"
	case errors.Is(err, ErrPoorQuality):
		code, msg = CodePoorQuality, "the face is too small, blurred, dark or turned"
	default:
		return nil
	}
	return httperr.Wrap(err, status, code, msg)
}

func (a *api) importRegister(w http.ResponseWriter, r *http.Request) error {
	caller, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if !caller.Admin {
		return httperr.Forbidden("register import needs an admin caller")
	}
	form, err := readMultipart(w, r, a.cfg.MaxImportBytes, func(name string) (int64, int, bool) {
		switch name {
		case "csv":
			return a.cfg.MaxImportBytes, 1, true
		case "photo":
			return a.s.cfg.MaxPhotoBytes, a.cfg.MaxImportRows, true
		}
		return 0, 0, false
	})
	if err != nil {
		return err
	}
	csvPart := form.first("csv")
	if csvPart == nil {
		return httperr.InvalidRequest("a csv part is required")
	}
	photos := memFS{}
	for _, p := range form.parts["photo"] {
		if !validPhotoName(p.filename) {
			return httperr.InvalidRequest("photo parts need a plain file name")
		}
		if _, dup := photos[p.filename]; dup {
			return httperr.InvalidRequest("two photo parts with the same file name")
		}
		photos[p.filename] = p.data
	}
	rows, fails, err := ParseCSV(bytes.NewReader(csvPart.data), a.cfg.MaxImportRows)
	if err != nil {
		return httperr.BadRequest(CodeInvalidCSV, err.Error()).WithCause(err)
	}
	rep, err := a.s.Import(r.Context(), caller.ID, rows, photos)
	if err != nil && rep == nil {
		return httperr.Internal(err)
	}
	rep.Rows += len(fails)
	rep.Failed += len(fails)
	rep.Failures = append(rep.Failures, fails...)
	sortFailures(rep.Failures)
	if err != nil {
		return httperr.Internal(err)
	}
	return writeJSON(w, http.StatusOK, rep)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return httperr.Internal(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// part is one multipart part read into memory.
type part struct {
	filename string
	data     []byte
}

type form struct{ parts map[string][]part }

func (f form) first(name string) *part {
	if ps := f.parts[name]; len(ps) > 0 {
		return &ps[0]
	}
	return nil
}

func (f form) value(name string) string {
	if p := f.first(name); p != nil {
		return string(p.data)
	}
	return ""
}

// readMultipart reads a multipart/form-data body of at most maxBody bytes.
// allow says, for each part name, the size limit of one part and how many
// parts of that name are accepted; unknown names are refused.
func readMultipart(w http.ResponseWriter, r *http.Request, maxBody int64, allow func(name string) (maxBytes int64, count int, ok bool)) (form, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return form{}, httperr.New(http.StatusUnsupportedMediaType, httperr.CodeUnsupportedMediaType, "expected multipart/form-data")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		return form{}, httperr.InvalidRequest("malformed multipart body").WithCause(err)
	}
	f := form{parts: map[string][]part{}}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return form{}, multipartError(err)
		}
		name := p.FormName()
		limit, count, ok := allow(name)
		if !ok {
			return form{}, httperr.InvalidRequest(fmt.Sprintf("unexpected part %.40q", name))
		}
		if len(f.parts[name]) >= count {
			return form{}, httperr.InvalidRequest(fmt.Sprintf("too many %q parts (at most %d)", name, count))
		}
		b, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return form{}, multipartError(err)
		}
		if int64(len(b)) > limit {
			if name == "photo" {
				return form{}, httperr.New(http.StatusRequestEntityTooLarge, CodeImageTooLarge, fmt.Sprintf("a photo is larger than %d bytes", limit))
			}
			return form{}, httperr.New(http.StatusRequestEntityTooLarge, httperr.CodeBodyTooLarge, fmt.Sprintf("part %q is larger than %d bytes", name, limit))
		}
		f.parts[name] = append(f.parts[name], part{filename: p.FileName(), data: b})
	}
}

func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return httperr.From(err)
	}
	return httperr.InvalidRequest("malformed multipart body").WithCause(err)
}

// memFS is an in-memory fs.FS of flat file names (uploaded photos).
type memFS map[string][]byte

func (m memFS) Open(name string) (fs.File, error) {
	b, ok := m[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{Reader: bytes.NewReader(b), name: name, size: int64(len(b))}, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f.name, f.size}, nil }
func (f *memFile) Close() error               { return nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
