package main

// Register import and the identity API: `trustid import`, the face engine
// adapter for authn/identity, the caller authenticator and mountIdentity,
// which serve calls to mount the verification and admin import API.

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trustid/trustid/authn/face"
	authid "github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/authn/index"
	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/oidc"
)

// faceEmbedder adapts the OpenCV engine to authid.Embedder, translating
// the engine's errors into identity's probe sentinels (both stay in the
// chain).
type faceEmbedder struct {
	eng  *face.Engine
	opts face.Options
}

var _ authid.Embedder = faceEmbedder{}

func newFaceEmbedder(eng *face.Engine, datasetMode bool) faceEmbedder {
	opts := face.Options{Embedding: true, Select: face.SelectLargest}
	if datasetMode {
		// Photo collections such as LFW show bystanders: keep the central face.
		opts.AllowSeveral, opts.Select = true, face.SelectCentral
	}
	return faceEmbedder{eng: eng, opts: opts}
}

func (f faceEmbedder) ModelVersion() string { return face.ModelVersion }

func (f faceEmbedder) Embed(ctx context.Context, img []byte) (authid.Probe, error) {
	res, err := f.eng.Process(ctx, img, f.opts)
	if err != nil {
		return authid.Probe{}, faceError(err)
	}
	return authid.Probe{Embedding: res.Embedding, ModelVersion: face.ModelVersion}, nil
}

func faceError(err error) error {
	var s error
	switch {
	case errors.Is(err, face.ErrTooLarge):
		s = authid.ErrImageTooLarge
	case errors.Is(err, face.ErrUnsupportedFormat), errors.Is(err, face.ErrCorrupt),
		errors.Is(err, face.ErrTruncated), errors.Is(err, face.ErrBadFrame):
		s = authid.ErrBadImage
	case errors.Is(err, face.ErrNoFace):
		s = authid.ErrNoFace
	case errors.Is(err, face.ErrSeveralFaces):
		s = authid.ErrSeveralFaces
	case errors.Is(err, face.ErrFaceTooSmall), errors.Is(err, face.ErrBlurred),
		errors.Is(err, face.ErrPose), errors.Is(err, face.ErrTooDark), errors.Is(err, face.ErrMisaligned):
		s = authid.ErrPoorQuality
	default:
		return err
	}
	return fmt.Errorf("%w: %w", s, err)
}

// loadThresholds is loadThresholdsFor the shipped (strictest) points.
func loadThresholds(path string) (*authid.Thresholds, error) {
	return loadThresholdsFor(path, authid.Strictest)
}

// loadThresholdsFor reads the named population's operating points
// (face.population) from the calibration file (authn/face.Calibration JSON
// from `trustid-lab calibrate-face`) at path, or named by
// TRUSTID_FACE_THRESHOLDS, or else the calibration committed with the face
// engine (authn/face/calibration.json). Its embedding options (no flip)
// are the ones faceEmbedder uses.
func loadThresholdsFor(path, population string) (*authid.Thresholds, error) {
	if path == "" {
		path = os.Getenv("TRUSTID_FACE_THRESHOLDS")
	}
	if path != "" {
		return authid.LoadThresholdsFor(path, population)
	}
	cal, err := face.DefaultCalibration()
	if err != nil {
		return nil, fmt.Errorf("%w: committed calibration: %w (run `trustid-lab calibrate-face -out FILE` and pass -thresholds FILE)", authid.ErrThresholds, err)
	}
	b, err := json.Marshal(cal)
	if err != nil {
		return nil, err
	}
	return authid.ParseThresholdsFor(b, population)
}

// identityOptions are the knobs of the identity service cmd exposes as flags.
type identityOptions struct {
	thresholds  string // calibration file; empty: the committed one
	testIDs     bool   // accept test-format ID numbers
	datasetMode bool   // keep the central face when a photo shows several
	follow      bool   // follow the store's template feed (serve)
}

// newIdentity builds the identity service over the app's store, with a
// fresh index loaded from the store.
func newIdentity(ctx context.Context, a *app, eng *face.Engine, o identityOptions) (*authid.Service, error) {
	th, err := loadThresholdsFor(o.thresholds, a.cfg.Face.Population)
	if err != nil {
		return nil, err
	}
	idx, err := index.New(index.Config{Dim: face.EmbeddingSize})
	if err != nil {
		return nil, err
	}
	svc, err := authid.New(authid.Config{
		Store: a.store, Embedder: newFaceEmbedder(eng, o.datasetMode), Index: idx, Audit: a.recorder(),
		Thresholds: th, OperatingPoint: a.cfg.Face.OperatingPoint,
		IDNumbers: idnumber.Policy{AllowTest: o.testIDs},
		Workers:   eng.Workers(), MaxPhotoBytes: a.cfg.Limits.MaxImageBytes,
		Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	if !o.follow {
		if _, _, err := svc.LoadIndex(ctx); err != nil {
			return nil, err
		}
		return svc, nil
	}
	// Several nodes may share the store: follow its template change feed
	// (LISTEN/NOTIFY on PostgreSQL, polling on SQLite) so the 1:N index
	// sees their enrolments and deletions.
	feed, ok := a.store.(store.TemplateFeed)
	if !ok {
		if _, _, err := svc.LoadIndex(ctx); err != nil {
			return nil, err
		}
		return svc, nil
	}
	notifier, _ := a.store.(store.TemplateNotifier)
	fol, err := svc.Follow(ctx, authid.FeedConfig{Feed: feed, Notifier: notifier})
	if err != nil {
		return nil, err
	}
	go fol.Run(ctx)
	return svc, nil
}

func runImport(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("import", flag.ContinueOnError)
	cfgPath := configFlag(fset)
	csvPath := fset.String("csv", "", "register CSV with header id_number,name,photo")
	photos := fset.String("photos", "", "directory the CSV's photo paths are relative to")
	var o identityOptions
	fset.StringVar(&o.thresholds, "thresholds", "", "face calibration JSON from `trustid-lab calibrate-face` (default: $TRUSTID_FACE_THRESHOLDS, else the calibration committed with authn/face)")
	fset.BoolVar(&o.testIDs, "test-ids", false, "also accept test ID numbers (region code 99...., see authn/idnumber)")
	fset.BoolVar(&o.datasetMode, "dataset", false, "photo collections (LFW): keep the central face instead of refusing photos with several faces")
	workers := fset.Int("workers", 0, "face engine workers (default: face.workers from the config, else the number of CPUs)")
	actor := fset.String("actor", "", "operator name for the audit log (default $USER)")
	synthFrom := fset.String("synth-from", "", "instead of importing, write a register CSV to stdout for a DIR/NAME/*.jpg photo collection with synthesised test ID numbers")
	synthN := fset.Int("n", 100, "with -synth-from: number of identities")
	synthMin := fset.Int("min-images", 2, "with -synth-from: only identities with at least this many images (the first is the register photo)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if *synthFrom != "" {
		return synthRegister(os.Stdout, *synthFrom, *synthN, *synthMin)
	}
	if *csvPath == "" || *photos == "" {
		return errors.New("need -csv FILE and -photos DIR")
	}
	if st, err := os.Stat(*photos); err != nil || !st.IsDir() {
		return fmt.Errorf("-photos %s is not a directory", *photos)
	}
	f, err := os.Open(*csvPath)
	if err != nil {
		return err
	}
	defer f.Close()

	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	n := *workers
	if n <= 0 {
		n = a.cfg.Face.Workers
	}
	if n <= 0 {
		n = runtime.NumCPU()
	}
	eng, err := face.New(face.Config{ModelDir: a.cfg.ModelsDir, Workers: n, Logger: a.log})
	if err != nil {
		return err
	}
	defer eng.Close()
	svc, err := newIdentity(ctx, a, eng, o)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := svc.ImportCSV(ctx, operatorActor(*actor), f, os.DirFS(*photos))
	if rep != nil {
		out := struct {
			*authid.ImportReport
			Seconds float64 `json:"seconds"`
			Workers int     `json:"workers"`
		}{rep, time.Since(start).Seconds(), n}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return err
}

// synthRegister writes a register CSV for a NAME/NAME_NNNN.jpg collection:
// the first n identities (by name) with at least minImages images, their
// first image as the register photo, test ID numbers 0..n-1.
func synthRegister(w io.Writer, root string, n, minImages int) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"id_number", "name", "photo"})
	k := 0
	for _, e := range entries {
		if k >= n {
			break
		}
		if !e.IsDir() {
			continue
		}
		imgs, err := fs.Glob(os.DirFS(filepath.Join(root, e.Name())), "*.jpg")
		if err != nil || len(imgs) < max(minImages, 1) {
			continue
		}
		sort.Strings(imgs)
		name := strings.ReplaceAll(e.Name(), "_", " ")
		if !authid.ValidName(name) {
			continue
		}
		id, err := idnumber.Synthesize(k)
		if err != nil {
			return err
		}
		cw.Write([]string{id, name, e.Name() + "/" + imgs[0]})
		k++
	}
	cw.Flush()
	return cw.Error()
}

// identityAuth authenticates callers of the identity API: the admin token
// as a bearer token (admin, trusted), or OAuth client credentials in HTTP
// Basic (client_secret_basic; first-party clients are trusted, others not),
// checked, limited and logged by the provider's client authentication
// (internal/clientauth). Face verification is open to the admin and to
// clients registered with the scope identity:face_verify
// (oidc.ScopeFaceVerify) only.
type identityAuth struct {
	adminToken string
	clients    clientauth.ClientGetter
	secrets    *clientauth.Authenticator // nil: client credentials are not accepted
}

var _ authid.CallerAuthenticator = identityAuth{}

var errUnauthenticated = errors.New("identity api: unauthenticated")

func (a identityAuth) Authenticate(r *http.Request) (authid.Caller, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if a.adminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.adminToken)) == 1 {
			return authid.Caller{ID: "admin", Trusted: true, Admin: true, FaceVerify: true}, nil
		}
		return authid.Caller{}, errUnauthenticated
	}
	if _, _, ok := r.BasicAuth(); !ok || a.secrets == nil || a.clients == nil {
		return authid.Caller{}, errUnauthenticated
	}
	c, err := a.secrets.AuthenticateBasic(r, a.clients)
	switch {
	case errors.Is(err, clientauth.ErrMalformed):
		return authid.Caller{}, httperr.InvalidRequest("the client credentials are not valid UTF-8").WithCause(err)
	case errors.Is(err, clientauth.ErrLimited):
		return authid.Caller{}, err // 429 with Retry-After (httperr.Answerer)
	case err != nil && !errors.Is(err, clientauth.ErrInvalidCredentials):
		// A fault of the client store: 503, never a credential error.
		return authid.Caller{}, httperr.Unavailable(err)
	case err != nil:
		// authid answers 401; the cause stays in the chain.
		return authid.Caller{}, fmt.Errorf("%w: %w", errUnauthenticated, err)
	}
	return authid.Caller{ID: "client:" + c.ID, Trusted: c.FirstParty, FaceVerify: slices.Contains(c.Scopes, oidc.ScopeFaceVerify)}, nil
}

// mountIdentity builds the identity service and mounts its HTTP API
// (authid.PathVerify, authid.PathImport) on mux. secrets may be nil
// (then only the admin token authenticates). The returned service is what
// liveness and login use (ResolveIDNumber, MatchReference, Enroll).
func mountIdentity(ctx context.Context, a *app, mux *http.ServeMux, eng *face.Engine, secrets *clientauth.Authenticator, log *slog.Logger) (*authid.Service, error) {
	// The zero-config development setup and test mode accept test ID
	// numbers, so demos can run on LFW with synthesised IDs.
	opts := identityOptions{testIDs: a.cfg.Dev || a.cfg.Test, follow: true}
	if opts.testIDs {
		log.Warn("identity: test ID numbers (region code 99) are accepted in this development/test setup")
	}
	svc, err := newIdentity(ctx, a, eng, opts)
	if err != nil {
		return nil, err
	}
	h, err := authid.NewHandler(authid.HTTPConfig{
		Service: svc,
		Auth:    identityAuth{adminToken: a.cfg.Secrets.AdminToken, clients: a.store.Clients(), secrets: secrets},
		Limiter: a.eph, MaxImageBytes: a.cfg.Limits.MaxImageBytes, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle(authid.PathVerify, h)
	mux.Handle(authid.PathImport, h)
	return svc, nil
}
