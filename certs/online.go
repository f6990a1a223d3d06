package certs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// Verifier is an authenticated verifier client (a hotel, a vehicle office).
type Verifier struct {
	ClientID string
	Role     string
}

// VerifierAuthenticator authenticates the verifier client calling the online
// API; cmd wires it to the OIDC provider (client credentials access token
// introspection). It returns an error for an unauthenticated request, or
// an *httperr.Error to answer otherwise (503 when the client store is down:
// an outage is not a credential error).
type VerifierAuthenticator interface {
	AuthenticateVerifier(r *http.Request) (Verifier, error)
}

// CitizenSession is the logged-in citizen calling the citizen endpoints.
type CitizenSession struct {
	CitizenID string
	AuthTime  time.Time // time of the last face + liveness proof
	ACR       string
}

// CitizenAuthenticator authenticates the citizen (cmd wires it to the login
// session or an access token of the provider).
type CitizenAuthenticator interface {
	AuthenticateCitizen(r *http.Request) (CitizenSession, error)
}

// FaceMatcher compares the face in a photo taken at the counter with a
// reference template (cmd wires it to the face engine). A photo without a
// usable face is an error wrapping ErrPhotoUnusable.
type FaceMatcher interface {
	MatchPhoto(ctx context.Context, photo []byte, reference *store.Template) (bool, error)
}

// ClientGetter reads OAuth client records (store.ClientStore satisfies it).
type ClientGetter interface {
	Get(ctx context.Context, id string) (*store.Client, error)
}

// CertGetter reads certificate records and records their use
// (store.CertificateStore satisfies it).
type CertGetter interface {
	Get(ctx context.Context, serial string) (*store.Certificate, error)
	MarkUsed(ctx context.Context, serial string, at time.Time) error
}

// DisclosureConsents reads a citizen's consent for a client.
type DisclosureConsents interface {
	Get(ctx context.Context, citizenID, clientID string) (*store.Consent, error)
}

// ServiceConfig holds the online service's live dependencies.
type ServiceConfig struct {
	Issuer    *Issuer
	Certs     CertGetter
	Citizens  CitizenGetter
	Templates TemplateLister
	Audit     store.AuditStore // recorded through an audit.Recorder
	// Replay holds digests of verified presentations and face-check handles.
	Replay    ephemeral.Store
	Verifiers VerifierAuthenticator
	Citizen   CitizenAuthenticator
	// Clients, when set, names the verifiers in the citizen's log
	// (store.ClientStore satisfies it).
	Clients ClientGetter
	// Consents are the citizens' consents (store.ConsentStore satisfies
	// it): plaintext attributes (name, ID number) go to a verifier only
	// when its role's policy lists them and the citizen allowed that
	// verifier (a consent whose Claims name them, given on the account
	// page). Nil: verifiers get the result only.
	Consents DisclosureConsents
	Faces    FaceMatcher // nil disables the counter face check
	Policy   Policy
	// PseudonymKey (at least 32 bytes) keys the per-verifier holder ids.
	PseudonymKey []byte
	Window, Skew time.Duration // presentation validity and clock skew
	// FaceCheckTTL is how long after a verification its face check may run; 5 min when zero.
	FaceCheckTTL time.Duration
	// TrustCacheTTL is how long the key list is reused between store reads; 1 min when zero.
	TrustCacheTTL time.Duration
	// StatusCacheTTL is how long one signed status list is served again
	// (offline verifiers see a revocation at most this much later; online
	// verification reads the store); 30 s when zero.
	StatusCacheTTL time.Duration

	// Metrics, when set, receives certs_verifications_total{outcome} and
	// certs_face_checks_total{outcome}.
	Metrics prometheus.Registerer

	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Service is the online verification API and the citizen's certificate
// endpoints. Handler returns its http.Handler.
type Service struct {
	cfg ServiceConfig

	mu          sync.Mutex
	trust       *TrustList
	trustUntil  time.Time
	status      []byte
	statusUntil time.Time

	verifications, faceChecks *prometheus.CounterVec
	rec                       *audit.Recorder
}

// NewService checks cfg and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	var errs []error
	if cfg.Issuer == nil || cfg.Certs == nil || cfg.Citizens == nil || cfg.Templates == nil || cfg.Audit == nil || cfg.Replay == nil {
		errs = append(errs, errors.New("Issuer, Certs, Citizens, Templates, Audit and Replay are required"))
	}
	if cfg.Verifiers == nil || cfg.Citizen == nil {
		errs = append(errs, errors.New("Verifiers and Citizen authenticators are required"))
	}
	if len(cfg.PseudonymKey) < 32 {
		errs = append(errs, errors.New("PseudonymKey must be at least 32 bytes"))
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	if err := cfg.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("certs: service config: %w", errors.Join(errs...))
	}
	if cfg.FaceCheckTTL <= 0 {
		cfg.FaceCheckTTL = 5 * time.Minute
	}
	if cfg.TrustCacheTTL <= 0 {
		cfg.TrustCacheTTL = time.Minute
	}
	if cfg.StatusCacheTTL <= 0 {
		cfg.StatusCacheTTL = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rec, err := newRecorder(cfg.Audit, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("certs: service config: %w", err)
	}
	svc := &Service{
		cfg: cfg,
		rec: rec,
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certs_verifications_total", Help: "Online net certificate verifications by outcome (ok or refusal code).",
		}, []string{"outcome"}),
		faceChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certs_face_checks_total", Help: "Counter face checks by outcome (match, no_match or refusal code).",
		}, []string{"outcome"}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{svc.verifications, svc.faceChecks} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("certs: metrics: %w", err)
			}
		}
	}
	svc.startReplayMemory()
	return svc, nil
}

// startReplayMemory makes sure the replay cache's memory markers exist when
// the service starts, so that only a loss of the cache while it runs (not a
// first start on an empty one) refuses the presentations made before it. A
// failure is logged: the markers are then born at the first verification.
func (s *Service) startReplayMemory() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ephemeral.StartMemories(ctx, s.cfg.Replay, "certs:replay-memory:", s.cfg.Now()); err != nil {
		s.cfg.Logger.Warn("certs: replay cache memory markers", "err", err)
	}
}

// Handler serves, relative to where cmd mounts it:
//
//	POST /verify      verifier: verify a presentation for a purpose
//	POST /face-check  verifier: match a counter photo against a verified holder
//	GET  /keys        public: issuer key list (JSON)
//	GET  /status      public: status list token (application/statuslist+cwt)
//	POST /devices/challenge  citizen: a nonce for the device's proof of possession
//	POST /issue              citizen: certify a device's public key (with the proof)
//	GET  /devices            citizen: the devices holding a certificate
//	POST /devices/revoke     citizen: revoke one device's certificate
//	GET  /log                citizen: who verified the certificate, when, for what
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /verify", s.wrap(s.handleVerify))
	mux.Handle("POST /face-check", s.wrap(s.handleFaceCheck))
	mux.Handle("GET /purposes", s.wrap(s.handlePurposes))
	mux.Handle("GET /keys", s.wrap(s.handleKeys))
	mux.Handle("GET /status", s.wrap(s.handleStatus))
	mux.Handle("POST /devices/challenge", s.wrap(s.handleNonce))
	mux.Handle("POST /issue", s.wrap(s.handleIssue))
	mux.Handle("GET /devices", s.wrap(s.handleDevices))
	mux.Handle("POST /devices/revoke", s.wrap(s.handleRevokeDevice))
	mux.Handle("GET /log", s.wrap(s.handleLog))
	return mux
}

// wrap turns a handler returning an error into an http.Handler answering
// through the project's one error writer (internal/httperr): a refusal
// (*Error, an httperr.Answerer) keeps its machine code and client-safe
// reason, a store fault is a 503, anything else a 500.
func (s *Service) wrap(h httperr.HandlerFunc) http.Handler {
	return httperr.Handle(s.cfg.Logger, h)
}

func readJSON(r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

// trustList returns the key list, cached for TrustCacheTTL.
func (s *Service) trustList(ctx context.Context) (*TrustList, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trust != nil && now.Before(s.trustUntil) {
		return s.trust, nil
	}
	tl, err := s.cfg.Issuer.TrustList(ctx)
	if err != nil {
		return nil, err
	}
	s.trust, s.trustUntil = tl, now.Add(s.cfg.TrustCacheTTL)
	return tl, nil
}

// VerifyRequest is the body of POST /verify.
type VerifyRequest struct {
	Payload string `json:"payload"`
	Purpose string `json:"purpose"`
	// Challenge (base64url) is the verifier's challenge, when it gave one.
	Challenge string `json:"challenge,omitempty"`
}

// VerifyResponse is the answer to a successful verification.
type VerifyResponse struct {
	Result string `json:"result"` // "ok"
	// Holder is the holder's pseudonym for this verifier only.
	Holder     string            `json:"holder"`
	Attributes map[string]string `json:"attributes"`
	// Withheld lists the plaintext attributes the role may receive but the
	// holder has not allowed this verifier to see (result only).
	Withheld       []string `json:"withheld,omitempty"`
	VerificationID string   `json:"verification_id"`
	// FaceCheck says whether POST /face-check is available for this verification.
	FaceCheck   bool      `json:"face_check"`
	PresentedAt time.Time `json:"presented_at"`
}

// consented lists the attributes the citizen allowed verifier to see.
func (s *Service) consented(ctx context.Context, citizenID, verifier string) ([]string, error) {
	if s.cfg.Consents == nil {
		return nil, nil
	}
	c, err := s.cfg.Consents.Get(ctx, citizenID, verifier)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("certs: consent: %w", err)
	}
	return c.Claims, nil
}

// faceCheckHandle is kept in the ephemeral store for POST /face-check.
type faceCheckHandle struct {
	ClientID    string `json:"c"`
	CitizenID   string `json:"s"`
	Serial      string `json:"n"`
	TemplateRef []byte `json:"t"`
	Purpose     string `json:"p"`
}

// verifierRefusal answers a verifier that was not authenticated: an error
// that carries its own answer (a limited client's 429, malformed
// credentials' 400) or a dependency's fault (503) as it is, anything else
// as ErrUnauthenticated.
// handlePurposes answers the authenticated verifier's role and the
// purposes it may state (the desk page offers only those).
func (s *Service) handlePurposes(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Verifiers.AuthenticateVerifier(r)
	if err != nil {
		return verifierRefusal(err)
	}
	ps := []string{}
	for p := range s.cfg.Policy[v.Role] {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{"role": v.Role, "purposes": ps})
}

func verifierRefusal(err error) error {
	var he *httperr.Error
	var an httperr.Answerer
	if errors.As(err, &he) || errors.As(err, &an) || httperr.IsUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnauthenticated, err)
}

func (s *Service) handleVerify(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Verifiers.AuthenticateVerifier(r)
	if err != nil {
		return verifierRefusal(err)
	}
	var req VerifyRequest
	if err := readJSON(r, 8<<10, &req); err != nil {
		return err
	}
	resp, err := s.Verify(r.Context(), v, req)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, resp)
}

// Verify runs an online verification for an authenticated verifier and
// records it in the audit log (HTTP-free, for tests and benchmarks).
func (s *Service) Verify(ctx context.Context, v Verifier, req VerifyRequest) (*VerifyResponse, error) {
	now := s.cfg.Now().UTC()
	ev := &store.AuditEvent{
		At: now, Actor: "client:" + v.ClientID, Action: "cert.verify", Outcome: "ok",
		Detail: map[string]string{"purpose": req.Purpose, "role": v.Role},
	}
	resp, err := s.verify(ctx, v, req, now, ev)
	if err != nil {
		ev.Outcome = CodeOf(err)
	}
	s.verifications.WithLabelValues(ev.Outcome).Inc()
	if aerr := s.rec.Record(ctx, ev); aerr != nil {
		// Every verification must be visible to the citizen: no record, no answer.
		return nil, fmt.Errorf("certs: audit verification: %w", errors.Join(aerr, err))
	}
	return resp, err
}

func (s *Service) verify(ctx context.Context, v Verifier, req VerifyRequest, now time.Time, ev *store.AuditEvent) (*VerifyResponse, error) {
	var challenge []byte
	if req.Challenge != "" {
		c, err := base64.RawURLEncoding.DecodeString(req.Challenge)
		if err != nil {
			return nil, fmt.Errorf("%w: challenge is not base64url", ErrBadRequest)
		}
		challenge = c
	}
	trust, err := s.trustList(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := DecodePayload(req.Payload)
	if err != nil {
		return nil, err
	}
	opts := VerifyOptions{Window: s.cfg.Window, Skew: s.cfg.Skew, Challenge: challenge, Purpose: req.Purpose}
	res, verr := opts.verify(raw, trust, now)
	var rec *store.Certificate
	if res != nil {
		// The issuer signature held: the claims are authentic, so the event
		// belongs in the holder's log even when the presentation is refused.
		serial := hex.EncodeToString(res.Claims.Serial)
		ev.Object = serial
		rec, err = s.cfg.Certs.Get(ctx, serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = nil
			if verr == nil {
				verr = fmt.Errorf("%w: serial %s", ErrUnknownCertificate, serial)
			}
		case err != nil:
			return nil, fmt.Errorf("certs: certificate %s: %w", serial, err)
		default:
			ev.Subject = rec.CitizenID
		}
	}
	if verr != nil {
		return nil, verr
	}
	attrs, err := s.cfg.Policy.allowed(v.Role, req.Purpose)
	if err != nil {
		return nil, err
	}
	// A presentation verifies once: the first verifier to present its digest wins.
	ttl := res.ValidUntil.Sub(now)
	if ttl < time.Second {
		ttl = time.Second
	}
	// The digest's first byte is a hash tag: a memory marker per tag lives
	// in the same Redis Cluster slot as the digests it vouches for.
	digest := hex.EncodeToString(res.Digest)
	tag := ephemeral.MemoryTag(res.Digest[0])
	fresh, err := s.cfg.Replay.SetNX(ctx, "certs:replay:"+tag+":"+digest, []byte(v.ClientID), ttl)
	if err != nil {
		return nil, fmt.Errorf("certs: replay cache: %w", err)
	}
	if !fresh {
		return nil, ErrReplayed
	}
	// Fail closed across a loss of the replay cache (Redis restart or
	// flush): a presentation that could have been accepted before the
	// cache's memory began may have been used already, so it is refused
	// and the holder shows a fresh QR (it refreshes every few seconds).
	since, err := ephemeral.MemorySince(ctx, s.cfg.Replay, "certs:replay-memory:"+tag, now)
	if err != nil {
		return nil, fmt.Errorf("certs: replay cache: %w", err)
	}
	// The holder's timestamp stands for the start of the window (a holder
	// clock up to Skew fast could have shown it that much earlier); it has
	// whole seconds, so the birth is compared at that precision.
	if res.PresentedAt.Before(since.Truncate(time.Second)) {
		return nil, fmt.Errorf("%w: presented at %s, replay memory since %s", ErrReplayUnknown,
			res.PresentedAt.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	if rec.Status == store.CertRevoked {
		return nil, fmt.Errorf("%w: %s", ErrRevoked, rec.RevokeReason)
	}
	if der, err := x509.MarshalPKIXPublicKey(res.DeviceKey); err != nil || !hmac.Equal(der, rec.DeviceKey) {
		return nil, fmt.Errorf("%w: device key differs from the issued record", ErrUnknownCertificate)
	}
	cit, err := s.cfg.Citizens.Get(ctx, rec.CitizenID)
	if err != nil {
		return nil, fmt.Errorf("certs: citizen: %w", err)
	}
	if cit.Disabled {
		return nil, ErrCitizenDisabled
	}
	allowed, err := s.consented(ctx, rec.CitizenID, v.ClientID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var withheld []string
	for _, a := range attrs {
		if IsPlaintext(a) && !has(allowed, a) {
			withheld = append(withheld, a)
			continue
		}
		switch a {
		case AttrName:
			out[a] = cit.Name // from the register: the certificate carries none
		case AttrIDNumber:
			out[a] = cit.IDNumber
		case AttrIDNumberMasked:
			out[a] = MaskIDNumber(cit.IDNumber)
		case AttrLevel:
			out[a] = LevelName(res.Claims.Level)
		case AttrExpires:
			out[a] = res.Claims.Expires().Format(time.RFC3339)
		}
	}
	resp := &VerifyResponse{
		Result:      "ok",
		Holder:      s.Pseudonym(res.Claims.HolderRef, v.ClientID),
		Attributes:  out,
		Withheld:    withheld,
		PresentedAt: res.PresentedAt,
	}
	if len(withheld) > 0 {
		ev.Detail["withheld"] = strings.Join(withheld, " ")
	}
	// Last use, for the citizen's device list: bookkeeping, so a fault is
	// logged and the verification stands.
	if err := s.cfg.Certs.MarkUsed(ctx, rec.Serial, now); err != nil {
		s.cfg.Logger.WarnContext(ctx, "certs: mark used", "serial", rec.Serial, "err", err)
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(s.cfg.Rand, id); err != nil {
		return nil, fmt.Errorf("certs: verification id: %w", err)
	}
	resp.VerificationID = base64.RawURLEncoding.EncodeToString(id)
	ev.Detail["verification_id"] = resp.VerificationID
	if s.cfg.Faces != nil && has(attrs, AttrFaceCheck) {
		h, _ := json.Marshal(faceCheckHandle{ClientID: v.ClientID, CitizenID: rec.CitizenID, Serial: rec.Serial, TemplateRef: res.Claims.TemplateRef, Purpose: req.Purpose})
		if err := s.cfg.Replay.Set(ctx, faceCheckKey(resp.VerificationID), h, s.cfg.FaceCheckTTL); err != nil {
			return nil, fmt.Errorf("certs: face check handle: %w", err)
		}
		resp.FaceCheck = true
	}
	return resp, nil
}

func faceCheckKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "certs:facecheck:" + hex.EncodeToString(sum[:])
}

// Pseudonym is the holder id a verifier sees: HMAC of the holder reference
// under the service's pseudonym key and the verifier's client id, so two
// verifiers cannot link their records of one citizen.
func (s *Service) Pseudonym(holderRef []byte, clientID string) string {
	m := hmac.New(sha256.New, s.cfg.PseudonymKey)
	m.Write([]byte("trustid/certs/pseudonym\x00"))
	m.Write(holderRef)
	m.Write([]byte{0})
	m.Write([]byte(clientID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// FaceCheckRequest is the body of POST /face-check.
type FaceCheckRequest struct {
	VerificationID string `json:"verification_id"`
	Photo          []byte `json:"photo"` // JPEG or PNG, base64 in JSON
}

func (s *Service) handleFaceCheck(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Verifiers.AuthenticateVerifier(r)
	if err != nil {
		return verifierRefusal(err)
	}
	var req FaceCheckRequest
	if err := readJSON(r, 12<<20, &req); err != nil {
		return err
	}
	match, err := s.FaceCheck(r.Context(), v, req)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]bool{"match": match})
}

// FaceCheck matches a counter photo against the reference template of the
// holder of a certificate this verifier verified moments ago.
func (s *Service) FaceCheck(ctx context.Context, v Verifier, req FaceCheckRequest) (bool, error) {
	if s.cfg.Faces == nil {
		return false, fmt.Errorf("%w: face check is not enabled", ErrVerificationNotFound)
	}
	raw, err := s.cfg.Replay.Get(ctx, faceCheckKey(req.VerificationID))
	if errors.Is(err, ephemeral.ErrNotFound) {
		return false, ErrVerificationNotFound
	}
	if err != nil {
		return false, fmt.Errorf("certs: face check handle: %w", err)
	}
	var h faceCheckHandle
	if err := json.Unmarshal(raw, &h); err != nil || h.ClientID != v.ClientID {
		return false, ErrVerificationNotFound
	}
	if len(req.Photo) == 0 {
		return false, fmt.Errorf("%w: photo is empty", ErrBadRequest)
	}
	ts, err := s.cfg.Templates.ListByCitizen(ctx, h.CitizenID)
	if err != nil {
		return false, fmt.Errorf("certs: templates: %w", err)
	}
	var ref *store.Template
	for _, t := range ts {
		if hmac.Equal(TemplateRef(t), h.TemplateRef) {
			ref = t
		}
	}
	if ref == nil {
		return false, ErrNoReferenceTemplate
	}
	match, err := s.cfg.Faces.MatchPhoto(ctx, req.Photo, ref)
	if err != nil {
		s.faceChecks.WithLabelValues(CodeOf(err)).Inc()
		return false, fmt.Errorf("certs: face match: %w", err)
	}
	outcome := "no_match"
	if match {
		outcome = "match"
	}
	s.faceChecks.WithLabelValues(outcome).Inc()
	ev := &store.AuditEvent{
		At: s.cfg.Now().UTC(), Actor: "client:" + v.ClientID, Action: "cert.face_check", Subject: h.CitizenID,
		Object: h.Serial, Outcome: outcome, Detail: map[string]string{"purpose": h.Purpose, "role": v.Role},
	}
	if err := s.rec.Record(ctx, ev); err != nil {
		return false, fmt.Errorf("certs: audit face check: %w", err)
	}
	return match, nil
}

func (s *Service) handleKeys(w http.ResponseWriter, r *http.Request) error {
	tl, err := s.trustList(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	return httperr.WriteJSON(w, http.StatusOK, tl)
}

// statusList returns the signed status list, re-signed at most every
// StatusCacheTTL (building it reads every revoked index from the store).
func (s *Service) statusList(ctx context.Context) ([]byte, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != nil && now.Before(s.statusUntil) {
		return s.status, nil
	}
	tok, err := s.cfg.Issuer.StatusList(ctx)
	if err != nil {
		return nil, err
	}
	s.status, s.statusUntil = tok, now.Add(s.cfg.StatusCacheTTL)
	return tok, nil
}

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.statusList(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", StatusListType)
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.cfg.StatusCacheTTL/time.Second)))
	_, err = w.Write(tok)
	return err
}

// LogEntry is one line of the citizen's verification log.
type LogEntry struct {
	At time.Time `json:"at"`
	// By is who acted: "verifier", "citizen", "operator" or "system".
	By           string `json:"by"`
	Verifier     string `json:"verifier,omitempty"`      // client id, for verifiers
	VerifierName string `json:"verifier_name,omitempty"` // the client's registered name
	Role         string `json:"role,omitempty"`
	Action       string `json:"action"` // verify, face_check, issue, revoke
	Purpose      string `json:"purpose,omitempty"`
	Outcome      string `json:"outcome"`
}

// Log lists the certificate events of a citizen, newest first.
func (s *Service) Log(ctx context.Context, citizenID string, limit int) ([]LogEntry, error) {
	evs, err := s.cfg.Audit.ListBySubject(ctx, citizenID, "cert.", limit)
	if err != nil {
		return nil, fmt.Errorf("certs: log: %w", err)
	}
	names := map[string]string{}
	if s.cfg.Clients != nil {
		for _, e := range evs {
			id, ok := strings.CutPrefix(e.Actor, "client:")
			if _, done := names[id]; !ok || done {
				continue
			}
			names[id] = ""
			if c, err := s.cfg.Clients.Get(ctx, id); err == nil {
				names[id] = c.Name
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("certs: log: client %s: %w", id, err)
			}
		}
	}
	out := make([]LogEntry, 0, len(evs))
	for _, e := range evs {
		by, id, _ := strings.Cut(e.Actor, ":")
		var verifier string
		if by == "client" {
			by, verifier = "verifier", id
		}
		out = append(out, LogEntry{
			At: e.At, By: by, Verifier: verifier, VerifierName: names[verifier], Role: e.Detail["role"],
			Action: strings.TrimPrefix(e.Action, "cert."), Purpose: e.Detail["purpose"], Outcome: e.Outcome,
		})
	}
	return out, nil
}

func (s *Service) handleLog(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.citizen(r)
	if err != nil {
		return err
	}
	entries, err := s.Log(r.Context(), sess.CitizenID, 100)
	if err != nil {
		return err
	}
	return httperr.WriteJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
