package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // QR photos given to verify-cert
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/certs/qr"
	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/seal"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite"
	"github.com/trustid/trustid/oidc"
)

// verifyCertOutput is what verify-cert prints (JSON).
type verifyCertOutput struct {
	Valid         bool      `json:"valid"`
	Error         string    `json:"error,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	NetworkNumber string    `json:"network_number,omitempty"`
	Level         string    `json:"assurance_level,omitempty"`
	Serial        string    `json:"serial,omitempty"`
	KeyID         string    `json:"issuer_kid,omitempty"`
	PresentedAt   time.Time `json:"presented_at,omitzero"`
	Expires       time.Time `json:"certificate_expires,omitzero"`
	Decoder       string    `json:"qr_decoder,omitempty"`
	Bytes         int       `json:"presentation_bytes,omitempty"`
}

// runVerifyCert verifies a net certificate presentation offline.
func runVerifyCert(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-cert", flag.ContinueOnError)
	keys := fs.String("keys", "", "published issuer key list (JSON, GET /certs/keys)")
	status := fs.String("status", "", "optional cached status list token (GET /certs/status)")
	payload := fs.String("payload", "", "scanned QR text (TID1:...); - reads standard input")
	qrPath := fs.String("qr", "", "QR image (PNG or JPEG) to decode instead of -payload (zbarimg, else gozxing)")
	challenge := fs.String("challenge", "", "challenge the holder was given (text), if any")
	nowFlag := fs.String("now", "", "verification time (RFC 3339); default now")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keys == "" || (*payload == "") == (*qrPath == "") {
		fs.Usage()
		return errors.New("need -keys and one of -payload or -qr")
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("-now: %w", err)
		}
		now = t
	}
	raw, err := os.ReadFile(*keys)
	if err != nil {
		return err
	}
	trust, err := certs.ParseTrustList(raw)
	if err != nil {
		return err
	}
	opts := certs.VerifyOptions{}
	if *challenge != "" {
		opts.Challenge = []byte(*challenge)
	}
	if *status != "" {
		tok, err := os.ReadFile(*status)
		if err != nil {
			return err
		}
		if opts.Status, err = certs.ParseStatusList(tok, trust, now); err != nil {
			return fmt.Errorf("status list: %w", err)
		}
	}
	text, decoder := *payload, ""
	switch {
	case *qrPath != "":
		if text, decoder, err = decodeQRFile(*qrPath); err != nil {
			return err
		}
	case text == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		text = string(b)
	}
	res, err := opts.Verify(text, trust, now)
	out := verifyCertOutput{Decoder: decoder}
	if err != nil {
		var e *certs.Error
		if !errors.As(err, &e) {
			return err
		}
		out.Error, out.Reason = e.Code, e.Reason
		printJSONTo(os.Stdout, out)
		return err
	}
	c := res.Claims
	out.Valid, out.NetworkNumber, out.Level = true, c.NetworkNumber, certs.LevelName(c.Level)
	out.Serial, out.KeyID, out.PresentedAt, out.Expires, out.Bytes = hex.EncodeToString(c.Serial), res.KeyID, res.PresentedAt, c.Expires(), res.Size
	return printJSONTo(os.Stdout, out)
}

func printJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// decodeQRFile reads a QR image with zbarimg (Debian zbar-tools) when it
// is installed, else with gozxing.
func decodeQRFile(path string) (text, decoder string, err error) {
	if bin, lerr := exec.LookPath("zbarimg"); lerr == nil {
		out, err := exec.Command(bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
		if err != nil {
			return "", "", fmt.Errorf("zbarimg %s: no QR code read: %w", path, err)
		}
		return strings.TrimRight(string(out), "\n"), "zbarimg", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	text, err = qr.Decode(img)
	if err != nil {
		return "", "", err
	}
	return text, "gozxing", nil
}

// runCertDemo issues a development certificate from a throwaway SQLite
// store in -dir and writes what a verifier and a holder need: the key list,
// status list, certificate, device key, and a live QR (PNG, SVG, text).
func runCertDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert-demo", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (created; holds a development database and keys)")
	name := fs.String("name", "Zhang San", "holder name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		fs.Usage()
		return errors.New("need -dir")
	}
	ring, _, err := seal.GenerateDev(*dir)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(*dir, "cert-demo.db"), ring)
	if err != nil {
		return err
	}
	defer db.Close()
	holderKey := make([]byte, 32)
	rand.Read(holderKey)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	numbers, err := netnumber.New(netnumber.Config{Citizens: db.Citizens(), KeyID: "D1", Key: holderKey})
	if err != nil {
		return err
	}
	iss, err := certs.NewIssuer(certs.IssuerConfig{
		Certs: db.Certificates(), Keys: db.Keys(), Citizens: db.Citizens(), Templates: db.Templates(), Audit: db.Audit(),
		HolderKey: holderKey, Name: "trustid-dev", NetworkNumbers: numbers, ACRLevels: map[string]int{"dev": certs.LevelHigh}, Logger: log,
	})
	if err != nil {
		return err
	}
	idb := make([]byte, 8)
	rand.Read(idb)
	cid := "demo-" + hex.EncodeToString(idb)
	if err := db.Citizens().Create(ctx, &store.Citizen{ID: cid, IDNumber: "11010119900307" + hex.EncodeToString(idb[:2]), Name: *name}); err != nil {
		return err
	}
	photo := sha256.Sum256([]byte(cid))
	if err := db.Templates().Create(ctx, &store.Template{ID: "t-" + cid, CitizenID: cid, Kind: store.TemplateRegister, ModelVersion: "demo", Vector: []float32{1}, PhotoHash: photo[:]}); err != nil {
		return err
	}
	dev, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	is, err := iss.Issue(ctx, certs.IssueRequest{CitizenID: cid, AuthTime: time.Now(), ACR: "dev", DeviceKey: &dev.PublicKey})
	if err != nil {
		return err
	}
	tl, err := iss.TrustList(ctx)
	if err != nil {
		return err
	}
	keysJSON, _ := json.MarshalIndent(tl, "", "  ")
	status, err := iss.StatusList(ctx)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(dev)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"keys.json", keysJSON, 0o644},
		{"status.cwt", status, 0o644},
		{"cert.cose", is.Cert, 0o644},
		{"device-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
	} {
		if err := os.WriteFile(filepath.Join(*dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "issued certificate %s to %s; key list, status list, certificate and device key in %s\n", is.Serial, *name, *dir)
	return presentToFiles(&certs.Holder{Cert: is.Cert, Key: dev, Now: time.Now, Rand: rand.Reader}, nil, *dir)
}

// runCertPresent is the holder-side helper: a fresh live QR from a saved
// certificate and device key.
func runCertPresent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert-present", flag.ContinueOnError)
	certPath := fs.String("cert", "", "certificate (COSE_Sign1 bytes, cert.cose)")
	keyPath := fs.String("device-key", "", "device private key (PKCS#8 PEM)")
	out := fs.String("out", ".", "directory for payload.txt, qr.png and qr.svg")
	challenge := fs.String("challenge", "", "verifier challenge to bind (text)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *certPath == "" || *keyPath == "" {
		fs.Usage()
		return errors.New("need -cert and -device-key")
	}
	cert, err := os.ReadFile(*certPath)
	if err != nil {
		return err
	}
	pemBytes, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return fmt.Errorf("%s: not PEM", *keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyPath, err)
	}
	dev, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("%s: not an ECDSA key", *keyPath)
	}
	var ch []byte
	if *challenge != "" {
		ch = []byte(*challenge)
	}
	return presentToFiles(&certs.Holder{Cert: cert, Key: dev, Now: time.Now, Rand: rand.Reader}, ch, *out)
}

func presentToFiles(h *certs.Holder, challenge []byte, dir string) error {
	raw, err := h.PresentBytes(challenge)
	if err != nil {
		return err
	}
	text := certs.EncodePayload(raw)
	code, err := qr.Encode(text)
	if err != nil {
		return err
	}
	png, err := code.PNG(6)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"payload.txt": []byte(text + "\n"), "qr.png": png, "qr.svg": code.SVG()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return printJSONTo(os.Stdout, map[string]any{
		"presentation_bytes": len(raw), "qr_chars": len(text), "qr_version": code.Version,
		"qr_modules": code.Size, "qr_mode": code.Mode, "qr_ecc": "M", "valid_seconds": int(certs.DefaultWindow / time.Second),
		"files": []string{filepath.Join(dir, "payload.txt"), filepath.Join(dir, "qr.png"), filepath.Join(dir, "qr.svg")},
	})
}

// certFaceMatcher is the counter face check of certs (certs.FaceMatcher) on
// the face engine: the embedding of the photo taken at the desk against the
// certificate holder's reference template, cosine at the calibrated
// threshold for the chosen false-accept rate.
type certFaceMatcher struct {
	eng       *face.Engine
	threshold float32
}

var _ certs.FaceMatcher = (*certFaceMatcher)(nil)

// newCertFaceMatcherFor uses the named population's threshold
// (face.population) from the committed calibration.
func newCertFaceMatcherFor(eng *face.Engine, far float64, population string) (*certFaceMatcher, error) {
	cal, err := face.DefaultCalibration()
	if err != nil {
		return nil, err
	}
	if cal, err = cal.ForPopulation(population); err != nil {
		return nil, err
	}
	thr, err := cal.Threshold(far)
	if err != nil {
		return nil, err
	}
	return &certFaceMatcher{eng: eng, threshold: float32(thr)}, nil
}

// MatchPhoto implements certs.FaceMatcher.
func (m *certFaceMatcher) MatchPhoto(ctx context.Context, photo []byte, ref *store.Template) (bool, error) {
	res, err := m.eng.Process(ctx, photo, face.Options{Embedding: true, AllowSeveral: true, Select: face.SelectLargest})
	var qe *face.QualityError
	switch {
	case err == nil:
	case errors.As(err, &qe), errors.Is(err, face.ErrUnsupportedFormat), errors.Is(err, face.ErrTooLarge),
		errors.Is(err, face.ErrTruncated), errors.Is(err, face.ErrCorrupt), errors.Is(err, face.ErrNoFace):
		return false, fmt.Errorf("%w: %v", certs.ErrPhotoUnusable, err)
	default:
		return false, err
	}
	if len(ref.Vector) != len(res.Embedding) {
		return false, fmt.Errorf("reference template %s has %d dimensions, the engine %d", ref.ID, len(ref.Vector), len(res.Embedding))
	}
	return face.Cosine(res.Embedding, ref.Vector) >= m.threshold, nil
}

// verifierClients authenticates certificate verifiers (hotels, vehicle
// offices) as OAuth clients of the provider with their client credentials
// (HTTP Basic, RFC 6749 section 2.3.1), checked by the provider's client
// authentication (internal/clientauth; the previous secret is accepted
// until its rotation grace ends). Only clients with a verifier role are let in.
type verifierClients struct {
	clients clientauth.ClientGetter
	secrets *clientauth.Authenticator
}

var _ certs.VerifierAuthenticator = (*verifierClients)(nil)

var errVerifierCredentials = errors.New("invalid verifier client credentials")

// AuthenticateVerifier implements certs.VerifierAuthenticator.
func (v *verifierClients) AuthenticateVerifier(r *http.Request) (certs.Verifier, error) {
	c, err := v.secrets.AuthenticateBasic(r, v.clients)
	switch {
	case errors.Is(err, clientauth.ErrInvalidCredentials):
		return certs.Verifier{}, errVerifierCredentials
	case errors.Is(err, clientauth.ErrMalformed):
		return certs.Verifier{}, fmt.Errorf("%w: %w", certs.ErrBadRequest, err)
	case err != nil:
		if errors.Is(err, clientauth.ErrLimited) {
			return certs.Verifier{}, err // 429 with Retry-After (httperr.Answerer)
		}
		// Anything else is a fault of the client store: 503, not a credential error.
		return certs.Verifier{}, httperr.Unavailable(err)
	case c.Role == "":
		v.secrets.Failed(r.Context(), c.ID, clientauth.Address(r), "client has no verifier role")
		return certs.Verifier{}, errVerifierCredentials
	}
	return certs.Verifier{ClientID: c.ID, Role: c.Role}, nil
}

// sessionCitizens authenticates the citizen by the provider's browser
// session, with the time of its last proof of identity (auth_time), which
// issuance checks against the maximum age.
type sessionCitizens struct{ provider *oidc.Provider }

// AuthenticateCitizen implements certs.CitizenAuthenticator.
func (s sessionCitizens) AuthenticateCitizen(r *http.Request) (certs.CitizenSession, error) {
	auth, err := s.provider.SessionAuthentication(r)
	if err != nil {
		return certs.CitizenSession{}, err
	}
	return certs.CitizenSession{CitizenID: auth.CitizenID, ACR: auth.ACR, AuthTime: auth.AuthTime}, nil
}

// certACRLevels maps the provider's authentication classes to certificate
// assurance levels; only face + liveness reaches the level that gets a certificate.
var certACRLevels = map[string]int{
	oidc.ACRFaceLivenessPasskey: certs.LevelHigh,
	oidc.ACRFaceLiveness:        certs.LevelHigh,
	// Action liveness: face 1:1 and a live face, not the voice-and-lips
	// check, and its genuine pass rate is not yet shown on people acting
	// on command (issue 19): substantial, not high, for now.
	oidc.ACRFaceActions: certs.LevelSubstantial,
	oidc.ACRFace:        certs.LevelSubstantial,
	oidc.ACRPasskey:     certs.LevelSubstantial,
}

// mountCerts builds the certificate issuer and online service on the app's
// stores and mounts the API under /certs/ (verify, face-check, keys, status,
// issue, revoke, log). It keeps issuer keys rotated in the background.
func mountCerts(ctx context.Context, a *app, mux *http.ServeMux, reg prometheus.Registerer, eng *face.Engine, provider *oidc.Provider) (*certs.Service, error) {
	log := a.log.With("area", "certs")
	iss, err := newCertIssuer(a, log)
	if err != nil {
		return nil, err
	}
	if err := iss.EnsureKeys(ctx); err != nil {
		return nil, err
	}
	faces, err := newCertFaceMatcherFor(eng, 1e-4, a.cfg.Face.Population)
	if err != nil {
		return nil, err
	}
	var policy certs.Policy
	if len(a.cfg.Certs.Policy) > 0 {
		policy = certs.Policy(a.cfg.Certs.Policy)
	}
	svc, err := certs.NewService(certs.ServiceConfig{
		Issuer: iss, Certs: a.store.Certificates(), Citizens: a.store.Citizens(), Templates: a.store.Templates(),
		Audit: a.store.Audit(), Replay: a.eph,
		Verifiers: &verifierClients{clients: a.store.Clients(), secrets: provider.ClientAuthenticator()},
		Citizen:   sessionCitizens{provider}, Faces: faces, Policy: policy, Clients: a.store.Clients(), Consents: a.store.Consents(),
		PseudonymKey: derivedKey(a, "certs-pseudonym"), Window: a.cfg.Certs.PresentationTTL,
		StatusCacheTTL: a.cfg.Certs.StatusInterval, Metrics: reg, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/certs/", http.StripPrefix("/certs", svc.Handler()))
	go func() {
		t := time.NewTicker(6 * time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := iss.EnsureKeys(ctx); err != nil {
					log.Error("certs: issuer key rotation", "err", err)
				}
			}
		}
	}()
	return svc, nil
}

// newCertIssuer builds the certificate issuer on the app's stores; serve and
// the operator commands share it so they derive the same keys.
func newCertIssuer(a *app, log *slog.Logger) (*certs.Issuer, error) {
	numbers, err := newNetNumbers(a)
	if err != nil {
		return nil, err
	}
	return certs.NewIssuer(certs.IssuerConfig{
		Certs: a.store.Certificates(), Keys: a.store.Keys(), Citizens: a.store.Citizens(),
		Templates: a.store.Templates(), Audit: a.store.Audit(), NetworkNumbers: numbers,
		HolderKey: derivedKey(a, "certs-holder"), Name: a.cfg.Issuer, ACRLevels: certACRLevels,
		MaxAuthAge: a.cfg.Certs.MaxAuthAge, CertTTL: a.cfg.Certs.Validity, MaxDevices: a.cfg.Certs.MaxDevices, Logger: log,
	})
}

// runCertRevoke is the operator's revocation (at a service desk, for a
// citizen who lost a phone and has no other signed-in device): one
// certificate by serial, or every active certificate of a citizen. It is
// audited as the named operator.
func runCertRevoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert-revoke", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	serial := fs.String("serial", "", "certificate serial (hex; trustid cert-devices lists a citizen's)")
	citizen := fs.String("citizen", "", "revoke every active certificate of this citizen instead")
	operator := fs.String("operator", "", "operator name recorded in the audit log (required)")
	reason := fs.String("reason", "", "reason recorded with the revocation (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *operator == "" || *reason == "" || (*serial == "") == (*citizen == "") {
		fs.Usage()
		return errors.New("need -operator, -reason and one of -serial or -citizen")
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	iss, err := newCertIssuer(a, a.log.With("area", "certs"))
	if err != nil {
		return err
	}
	serials := []string{*serial}
	if *citizen != "" {
		ds, err := iss.Devices(ctx, *citizen)
		if err != nil {
			return err
		}
		serials = serials[:0]
		for _, d := range ds {
			if d.Status == string(store.CertActive) {
				serials = append(serials, d.Serial)
			}
		}
		if len(serials) == 0 {
			return fmt.Errorf("citizen %s has no active certificate", *citizen)
		}
	}
	for _, s := range serials {
		if err := iss.RevokeByOperator(ctx, s, *operator, *reason); err != nil {
			return err
		}
	}
	return printJSONTo(os.Stdout, map[string][]string{"revoked": serials})
}

// runCertDevices lists a citizen's devices holding a certificate (the
// operator's view at a service desk; the citizen sees the same list on the
// account page).
func runCertDevices(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert-devices", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	citizen := fs.String("citizen", "", "citizen id (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *citizen == "" {
		fs.Usage()
		return errors.New("need -citizen")
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	iss, err := newCertIssuer(a, a.log.With("area", "certs"))
	if err != nil {
		return err
	}
	ds, err := iss.Devices(ctx, *citizen)
	if err != nil {
		return err
	}
	return printJSONTo(os.Stdout, map[string]any{"devices": ds})
}
