// Package identity owns the face side of a citizen's identity: importing
// the population register (citizens and their reference face templates),
// 1:1 verification of a probe photo against a claimed ID number, enrollment
// of live templates after a successful verification, and keeping the
// in-memory 1:N index in step with the stored templates so enrollment and
// import can refuse a face that already belongs to someone else.
//
// It does not run the face networks itself: an Embedder (the OpenCV engine
// in authn/face, wired by cmd/trustid) turns photos into embeddings, and an
// Index (authn/index) answers 1:N queries. Templates are stored encrypted
// by the store.Store backend, with the embedding model's version, so a model
// change is detected instead of comparing incompatible vectors.
//
// # Index synchronisation
//
// The index is updated in process by every change this package makes
// (import, re-import with a changed photo, enrollment, replacement of the
// oldest live template), so it is exact on a single node. Nodes sharing a
// store follow its template change feed (store.TemplateFeed: a trigger logs
// every insert and delete of a template with a sequence number) with a
// Follower: Follow loads the index and positions the reader before the
// feed's head; Run applies each change (an insert re-reads the template, a
// delete removes it) when PostgreSQL's NOTIFY announces one, and every few
// seconds in any case, so a missed notification costs delay, not a change;
// sequence numbers skipped by a transaction that had not committed yet are
// asked for again. The one window left is the feed's lag (milliseconds,
// README "Index change feed"): two nodes importing the same face under two
// ID numbers within it may both pass their duplicate check.
//
// # Decisions and operating points
//
// A match is a cosine score at or above the threshold calibrated for the
// configured false-accept rate (Thresholds, produced by `trustid-lab
// calibrate-face`). The duplicate check at enrollment uses the strictest
// point (FAR 1e-5) so that a legitimate new citizen is almost never refused.
package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/authn/index"
	"github.com/trustid/trustid/internal/store"
)

// Probe quality errors: an Embedder returns an error wrapping one of these
// (it may wrap its own cause too) when a photo cannot give a template.
var (
	ErrBadImage      = errors.New("identity: not a usable JPEG or PNG image")
	ErrImageTooLarge = errors.New("identity: image too large")
	ErrNoFace        = errors.New("identity: no face found")
	ErrSeveralFaces  = errors.New("identity: several faces")
	ErrPoorQuality   = errors.New("identity: face quality too low")
)

// Lookup and decision errors.
var (
	// ErrUnknownIDNumber: no citizen has this ID number.
	ErrUnknownIDNumber = errors.New("identity: unknown ID number")
	// ErrInvalidIDNumber: the ID number is malformed (wraps an idnumber error).
	ErrInvalidIDNumber = errors.New("identity: invalid ID number")
	// ErrDisabled: the citizen's account is disabled.
	ErrDisabled = errors.New("identity: citizen disabled")
	// ErrNoReference: the citizen has no register template of the current
	// model version (never imported, or imported with an older model).
	ErrNoReference = errors.New("identity: no reference template for the current model")
	// ErrNoMatch: the probe does not match the citizen at the operating point.
	ErrNoMatch = errors.New("identity: face does not match")
	// ErrDuplicateIdentity: the face matches a different citizen at the
	// duplicate-check operating point.
	ErrDuplicateIdentity = errors.New("identity: face belongs to another citizen")
	// ErrModelMismatch: an embedding of another length or model version.
	ErrModelMismatch = errors.New("identity: embedding model mismatch")
)

// Probe is what an Embedder extracts from one photo.
type Probe struct {
	// Embedding is L2-normalised.
	Embedding []float32
	// ModelVersion names the embedding model (stored with templates).
	ModelVersion string
}

// Embedder computes face embeddings from encoded photos. Implementations
// are safe for concurrent use and fail with the probe quality errors above.
type Embedder interface {
	Embed(ctx context.Context, image []byte) (Probe, error)
	// ModelVersion is the version every Probe carries.
	ModelVersion() string
}

// Index is the in-memory 1:N search over templates of the current model
// (authn/index.Index). Implementations are safe for concurrent use. This
// package keys entries by indexKey(citizenID, templateID), so a hit names
// its citizen without a second lookup.
type Index interface {
	// Add inserts or replaces the entry.
	Add(id string, vector []float32) error
	// Remove deletes the entry; false when absent.
	Remove(id string) bool
	// Search returns up to k entries most similar to vector, best first.
	Search(vector []float32, k int) ([]index.Match, error)
	Len() int
}

var _ Index = (*index.Index)(nil)

// indexKey is the index entry id of a template: ids are hex, so the
// separator is unambiguous.
func indexKey(citizenID, templateID string) string { return citizenID + "/" + templateID }

// splitIndexKey returns the citizen and template ids of an index entry.
func splitIndexKey(key string) (citizenID, templateID string) {
	c, t, _ := strings.Cut(key, "/")
	return c, t
}

// Auditor records audit events (internal/audit.Recorder).
type Auditor interface {
	Record(ctx context.Context, e *store.AuditEvent) error
}

// Config holds the live dependencies of a Service. Zero optional fields
// take the defaults noted.
type Config struct {
	Store      store.Store // required
	Embedder   Embedder    // required
	Index      Index       // required
	Audit      Auditor     // required
	Thresholds *Thresholds // required
	// OperatingPoint names the FAR of match decisions; default "1e-3"
	// (DefaultOperatingPoint).
	OperatingPoint string
	// DuplicateFAR is the operating point of the 1:N duplicate check;
	// default "1e-5".
	DuplicateFAR string
	// IDNumbers says which ID numbers are accepted (test format opt-in).
	IDNumbers idnumber.Policy
	// MaxLiveTemplates per citizen; the oldest is replaced. Default 5.
	MaxLiveTemplates int
	// Workers bounds concurrent embeddings during an import; set it to the
	// engine's pool size. Default 1.
	Workers int
	// MaxPhotoBytes bounds one register photo; default 4 MiB.
	MaxPhotoBytes int64
	// MaxRows bounds one import; default 100000.
	MaxRows int
	Now     func() time.Time // default time.Now
	Rand    io.Reader        // ids; default crypto/rand
	Logger  *slog.Logger     // default: discard
}

// Defaults.
const (
	DefaultOperatingPoint   = "1e-3"
	DefaultDuplicateFAR     = "1e-5"
	DefaultMaxLiveTemplates = 5
	DefaultMaxPhotoBytes    = 4 << 20
	DefaultMaxRows          = 100_000
	// duplicateCandidates is how many 1:N hits the duplicate check looks at:
	// enough to get past the citizen's own templates.
	duplicateCandidates = 2*DefaultMaxLiveTemplates + 2
)

// Service imports the register, verifies and enrolls faces. Safe for
// concurrent use.
type Service struct {
	cfg       Config
	threshold float32 // at cfg.OperatingPoint
	dupThresh float32 // at cfg.DuplicateFAR
	model     string
	// writeMu serialises the "1:N check, then store and index" step of
	// import and enrollment so two concurrent writers cannot both pass the
	// duplicate check with the same face.
	writeMu sync.Mutex
}

// New checks cfg and returns a Service. It does not load the index: call
// LoadIndex before serving.
func New(cfg Config) (*Service, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if cfg.Embedder == nil {
		errs = append(errs, errors.New("Embedder is required"))
	}
	if cfg.Index == nil {
		errs = append(errs, errors.New("Index is required"))
	}
	if cfg.Audit == nil {
		errs = append(errs, errors.New("Audit is required"))
	}
	if cfg.OperatingPoint == "" {
		cfg.OperatingPoint = DefaultOperatingPoint
	}
	if cfg.DuplicateFAR == "" {
		cfg.DuplicateFAR = DefaultDuplicateFAR
	}
	if cfg.MaxLiveTemplates <= 0 {
		cfg.MaxLiveTemplates = DefaultMaxLiveTemplates
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.MaxPhotoBytes <= 0 {
		cfg.MaxPhotoBytes = DefaultMaxPhotoBytes
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	if cfg.Thresholds == nil {
		errs = append(errs, errors.New("Thresholds is required"))
	} else {
		var err error
		if s.threshold, err = cfg.Thresholds.At(cfg.OperatingPoint); err != nil {
			errs = append(errs, err)
		}
		if s.dupThresh, err = cfg.Thresholds.At(cfg.DuplicateFAR); err != nil {
			errs = append(errs, err)
		}
		if cfg.Embedder != nil && cfg.Thresholds.ModelVersion != "" && cfg.Thresholds.ModelVersion != cfg.Embedder.ModelVersion() {
			errs = append(errs, fmt.Errorf("thresholds were calibrated for model %q, the engine runs %q",
				cfg.Thresholds.ModelVersion, cfg.Embedder.ModelVersion()))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("identity: config: %w", errors.Join(errs...))
	}
	s.model = cfg.Embedder.ModelVersion()
	for _, far := range cfg.Thresholds.Unresolved {
		if far == FARName(mustFAR(cfg.OperatingPoint)) || far == FARName(mustFAR(cfg.DuplicateFAR)) {
			cfg.Logger.Warn("face threshold extrapolated: the calibration had too few impostor pairs to measure this false-accept rate",
				"far", far)
		}
	}
	return s, nil
}

// mustFAR parses an operating point name already checked by Thresholds.At.
func mustFAR(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// OperatingPoint returns the FAR name and cosine threshold of match decisions.
func (s *Service) OperatingPoint() (far string, threshold float32) {
	return s.cfg.OperatingPoint, s.threshold
}

// newID returns a random opaque identifier (128 bits, hex).
func (s *Service) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("identity: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// cosine is the dot product of two L2-normalised vectors.
func cosine(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// audit records e; a failure is logged, not returned: the change it
// describes is already stored.
func (s *Service) audit(ctx context.Context, e *store.AuditEvent) {
	if err := s.cfg.Audit.Record(ctx, e); err != nil {
		s.cfg.Logger.ErrorContext(ctx, "audit record failed", "action", e.Action, "err", err)
	}
}
