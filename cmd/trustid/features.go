package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustid/trustid/authn/face"
	"github.com/trustid/trustid/authn/facelogin"
	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/authn/netnumber"
	"github.com/trustid/trustid/authn/passkey"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/clientauth"
	"github.com/trustid/trustid/internal/httpmw"
	"github.com/trustid/trustid/liveness"
	"github.com/trustid/trustid/liveness/challenge"
	"github.com/trustid/trustid/liveness/facemesh"
	"github.com/trustid/trustid/liveness/media"
	"github.com/trustid/trustid/liveness/speech"
	"github.com/trustid/trustid/liveness/synthvoice"
	"github.com/trustid/trustid/oidc"
)

// newNetNumbers is the 网号 assigner: its key is derived from the master
// secret per key id (citizens.network_number_key_id), so every node and
// operator command makes the same numbers.
func newNetNumbers(a *app) (*netnumber.Assigner, error) {
	kid := a.cfg.Citizens.NetworkNumberKeyID
	return netnumber.New(netnumber.Config{Citizens: a.store.Citizens(), KeyID: kid, Key: derivedKey(a, "netnumber/"+kid)})
}

// purgeTemplates deletes live face templates older than
// face.template_retention, at start and every 6 hours, until ctx ends.
func purgeTemplates(ctx context.Context, a *app, ids *identity.Service) {
	keep := a.cfg.Face.TemplateRetention
	if keep <= 0 {
		return
	}
	tick := time.NewTicker(6 * time.Hour)
	defer tick.Stop()
	for {
		if n, err := ids.PurgeExpired(ctx, keep); err != nil && ctx.Err() == nil {
			a.log.Warn("face templates: purge failed", "err", err)
		} else if n > 0 {
			a.log.Info("face templates: expired ones deleted", "count", n, "retention", keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// derivedKey derives a 32-byte key for one purpose (node.Node.DerivedKey).
func derivedKey(a *app, purpose string) []byte { return a.node.DerivedKey(purpose) }

// masterSecret is the OIDC provider's master key (node.Node.OIDCMasterSecret,
// shared with `trustid-lab bench-tokens`).
func masterSecret(a *app) []byte { return a.node.OIDCMasterSecret() }

// providerConfig is the OIDC provider's configuration from the app's.
func providerConfig(a *app, auths ...oidc.Authenticator) oidc.Config {
	c := oidc.Config{
		Issuer:           a.cfg.Issuer,
		Store:            a.store,
		Ephemeral:        a.eph,
		Logger:           a.log.With("area", "oidc"),
		Secret:           masterSecret(a),
		Authenticators:   auths,
		AccessTokenTTL:   a.cfg.OIDC.AccessTokenTTL,
		AccessTokenStore: a.cfg.OIDC.AccessTokenStore,
		Sealer:           a.ring,
		RefreshTokenTTL:  a.cfg.OIDC.RefreshTokenTTL,
		IDTokenTTL:       a.cfg.OIDC.IDTokenTTL,
		AuthCodeTTL:      a.cfg.OIDC.AuthCodeTTL,
		KeyRotation:      a.cfg.OIDC.KeyRotation,
		SigningAlg:       a.cfg.OIDC.SigningAlg,
		AdminToken:       a.cfg.Secrets.AdminToken,
		InsecureCookies:  strings.HasPrefix(a.cfg.Issuer, "http://"),
	}
	if g := a.cfg.OIDC.RefreshGracePeriod; g != nil {
		c.RefreshGracePeriod = *g
	}
	if nn, err := newNetNumbers(a); err == nil {
		c.NetworkNumbers = nn
	} else {
		// The config was validated (key id); an error here is a bug.
		a.log.Error("network numbers disabled", "err", err)
	}
	return c
}

// features are the live services serve builds; tests and other subcommands
// reuse the pieces.
type features struct {
	face     *face.Engine
	login    *facelogin.Login
	provider *oidc.Provider
	certs    *certs.Service
}

// mountFeatures builds the face engine, identity service, liveness verifier,
// login methods, OIDC provider and certificate service, and mounts their
// HTTP APIs on mux.
func mountFeatures(ctx context.Context, a *app, mux *http.ServeMux, reg *prometheus.Registry) error {
	f := &features{}
	var err error
	f.face, err = face.New(face.Config{ModelDir: a.cfg.ModelsDir, Workers: a.cfg.Face.Workers, Logger: a.log.With("area", "face")})
	if err != nil {
		return fmt.Errorf("face engine: %w (run deploy/setup.sh to fetch the models)", err)
	}
	a.closer = append(a.closer, func() error { f.face.Close(); return nil })

	// One client authentication (internal/clientauth) for the token
	// endpoint, the identity API and the verifier API, under the provider's
	// client-secret key.
	secrets, err := clientauth.New(clientauth.Config{Key: oidc.ClientSecretKey(masterSecret(a)), Logger: a.log.With("area", "clientauth"), Ephemeral: a.eph})
	if err != nil {
		return err
	}
	ids, err := mountIdentity(ctx, a, mux, f.face, secrets, a.log.With("area", "identity"))
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustid_face_index_templates",
		Help: "Templates in this node's in-memory 1:N index; nodes sharing a store converge through the template feed.",
	}, func() float64 { return float64(ids.IndexLen()) }))

	recs, err := digitRecognizers(a)
	if err != nil {
		return err
	}
	var digitLangs []string
	var spoken liveness.SpeechChecker = noRecognizer{}
	var voice *synthvoice.Detector
	for _, r := range recs {
		digitLangs = append(digitLangs, r.Lang())
		spoken = facelogin.Speech{Recognizer: r}
		if er, ok := r.(*speech.EmbeddingRecognizer); ok {
			// The synthetic-voice check (#17) shares the recogniser's
			// speech embedding sessions.
			if voice, err = synthvoice.New(synthvoice.Config{Frontend: er.Frontend()}); err != nil {
				return fmt.Errorf("synthetic-voice check: %w", err)
			}
		}
	}
	chCfg := challenge.Config{
		Store: a.eph, Secret: derivedKey(a, "liveness-challenge"), TTL: a.cfg.Liveness.ChallengeTTL,
		MaxFailures: a.cfg.Liveness.MaxFailures, FailureWindow: a.cfg.Liveness.FailWindow,
		Logger: a.log.With("area", "challenge"),
	}
	if a.cfg.Test && a.cfg.Liveness.FixedDigits != "" {
		a.log.Warn("TEST MODE: every liveness challenge uses fixed digits")
		chCfg.FixedDigits = a.cfg.Liveness.FixedDigits
	}
	if a.cfg.Test && a.cfg.Liveness.FixedActions != "" {
		a.log.Warn("TEST MODE: every action challenge uses fixed actions")
		chCfg.FixedActions = a.cfg.Liveness.FixedActions
	}
	mgr, err := challenge.New(chCfg)
	if err != nil {
		return fmt.Errorf("challenges: %w", err)
	}
	// In process (liveness/media/libav), or ffmpeg with a warm process.
	dec, closeDec := videoDecoder(25, media.Limits{MaxBytes: a.cfg.Limits.MaxVideoBytes})
	a.closer = append(a.closer, closeDec)
	// The face mesh follows the lips in every frame for the viseme check
	// (#17) and the face through the actions (#19): the decision refuses
	// to run without it.
	mesh, err := facemesh.New(facemesh.Config{ModelDir: a.cfg.ModelsDir})
	if err != nil {
		return fmt.Errorf("face mesh: %w (run deploy/setup.sh to fetch and convert the models)", err)
	}
	a.closer = append(a.closer, mesh.Close)
	lcfg := liveness.Config{
		Challenges: mgr, Faces: facelogin.Faces{Engine: f.face}, Speech: spoken,
		Mouths:     facelogin.Mouths{Runner: mesh},
		References: facelogin.IdentityRefs{Service: ids}, Video: dec, Logger: a.log.With("area", "liveness"),
		Limits: media.Limits{MaxBytes: a.cfg.Limits.MaxVideoBytes},
	}
	if voice != nil {
		lcfg.Voice, lcfg.VoiceThreshold = facelogin.Voice{Detector: voice}, voice.Threshold()
	}
	if *a.cfg.Liveness.Actions {
		actionChecks(a, mesh, &lcfg)
	}
	ver, err := liveness.New(lcfg)
	if err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	loginAudit, err := audit.New(audit.Config{Store: a.store.Audit(), Logger: a.log.With("area", "login")})
	if err != nil {
		return err
	}
	f.login, err = facelogin.New(facelogin.Config{
		Register: ids, Challenges: mgr, Verifier: ver, Logger: a.log.With("area", "login"),
		MaxVideoBytes: a.cfg.Limits.MaxVideoBytes, MaxFrames: 300, Audit: loginAudit,
		DigitLanguages: append([]string{}, digitLangs...), Actions: lcfg.Actions != nil,
	})
	if err != nil {
		return fmt.Errorf("face login: %w", err)
	}

	issuerURL, err := url.Parse(a.cfg.Issuer)
	if err != nil {
		return err
	}
	// Passkeys: a faster factor for returning citizens and the second factor
	// of the highest acr. Registration needs a face+liveness session.
	pk, err := passkey.New(passkey.Config{
		RPID: issuerURL.Hostname(), Origins: []string{issuerURL.Scheme + "://" + issuerURL.Host},
		DisplayName: "TrustID", Store: a.store, Ephemeral: a.eph, Logger: a.log.With("area", "passkey"),
		Sessions: passkey.SessionsFunc(func(r *http.Request) (string, string, error) { return f.provider.SessionCitizen(r) }),
	})
	if err != nil {
		// WebAuthn needs a domain name; an issuer on a bare IP serves without passkeys.
		a.log.Warn("passkeys disabled", "err", err)
		pk = nil
	}
	var registration *oidc.RegistrationPolicy
	if a.cfg.OIDC.DynamicRegistration {
		registration = &oidc.RegistrationPolicy{}
	}
	pages := &consentPages{}
	methods := []oidc.Authenticator{f.login}
	if pk != nil { // a nil *passkey.Login in the interface would be called
		methods = append(methods, pk)
	}
	pcfg := providerConfig(a, methods...)
	pcfg.ClientAuth = secrets
	pcfg.Pages = pages
	pcfg.DynamicRegistration = registration
	f.provider, err = oidc.New(pcfg)
	if err != nil {
		return fmt.Errorf("oidc: %w", err)
	}

	go f.provider.Run(ctx)
	mux.Handle("/", f.provider.Handler())
	if tok := a.cfg.Secrets.AdminToken; tok != "" {
		// The lawful-request export of a citizen's authentication log, as
		// `trustid auth-log` (audited before anything is answered).
		rec, err := audit.New(audit.Config{Store: a.store.Audit(), Logger: a.log.With("area", "authlog")})
		if err != nil {
			return err
		}
		mux.Handle("GET /admin/auth-log", audit.AuthLogAPI{Token: tok, Citizens: a.store.Citizens(), Store: a.store.Audit(),
			Recorder: rec, Logger: a.log.With("area", "authlog")})
	}
	if pk != nil {
		mux.Handle("/passkeys/", pk.Handler())
	}

	if f.certs, err = mountCerts(ctx, a, mux, reg, f.face, f.provider); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	go purgeTemplates(ctx, a, ids)
	if err := mountWeb(a, mux, f.provider, f.certs, pages, ids); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

// actionChecks adds the action challenge to the liveness configuration:
// the face mesh follows the face, a video-only decoder at the action
// sampling rate takes the evidence.
func actionChecks(a *app, mesh *facemesh.Runner, lcfg *liveness.Config) {
	lim := media.Limits{MaxBytes: a.cfg.Limits.MaxVideoBytes, MaxDuration: actionMaxDuration, VideoOnly: true}
	adec, closeDec := videoDecoder(25, lim) // a blink lasts 100-300 ms
	a.closer = append(a.closer, closeDec)
	lcfg.Actions = facelogin.MeshTracker{Mesh: mesh}
	lcfg.ActionVideo = adec
	lcfg.ActionLimits = lim
}

// actionMaxDuration: three actions at the page's pace take 6-9 s.
const actionMaxDuration = 10 * time.Second

// noRecognizer is the SpeechChecker of a deployment without a digit
// recogniser: no digit challenge is ever issued there, so a call is a bug.
type noRecognizer struct{}

func (noRecognizer) CheckDigits(context.Context, []int16, string, []float32) (liveness.SpeechResult, error) {
	return liveness.SpeechResult{}, errors.New("liveness: no digit recogniser configured")
}

// wrapHTTP applies the middleware every request passes through.
func wrapHTTP(a *app, mux *http.ServeMux, reg *prometheus.Registry) (http.Handler, error) {
	mw, err := httpmw.New(httpmw.Config{
		Logger:       a.log.With("area", "http"),
		Registry:     reg,
		Router:       mux,
		MaxBodyBytes: a.cfg.Limits.MaxVideoBytes + 1<<20,
	})
	if err != nil {
		return nil, err
	}
	return mw(mux), nil
}
