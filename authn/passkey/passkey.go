// Package passkey is TrustID's WebAuthn (passkey) login method and
// registration, on github.com/go-webauthn/webauthn (the only package that
// imports it). It implements authn.Method (login: a discoverable
// credential, or the signed-in citizen's credentials for a step-up) and
// serves registration for a citizen already signed in with face +
// liveness, so a passkey is only ever
// bound to a proven identity. Credentials are kept in store.PasskeyStore;
// ceremony state in the ephemeral store, single use.
package passkey

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

var _ authn.Method = (*Passkeys)(nil)

// Sessions tells who is signed in to a browser session (the OIDC provider
// does; cmd/ plugs it in). SessionCitizen returns an empty citizenID and a
// nil error when r has no signed-in session; an error means the session
// could not be read (a store fault), which registration answers 503, not
// "sign in".
type Sessions interface {
	SessionCitizen(r *http.Request) (citizenID, acr string, err error)
}

// Config holds the live dependencies.
type Config struct {
	// RPID is the WebAuthn relying party id: the issuer's host name.
	RPID string
	// Origins are the allowed page origins, e.g. "https://id.example.gov".
	Origins     []string
	DisplayName string
	Store       store.Store
	Ephemeral   ephemeral.Store
	Sessions    Sessions
	Logger      *slog.Logger
	Clock       func() time.Time
	// CeremonyTTL bounds a registration or login ceremony, default 5m.
	CeremonyTTL time.Duration
	// RegisterMinACR is the assurance a session needs to add a passkey,
	// default authn.ACRFaceLiveness.
	RegisterMinACR string
}

// Passkeys is the passkey login method and registration service.
type Passkeys struct {
	wa  *webauthn.WebAuthn
	cfg Config
}

// ErrConfig wraps configuration problems.
var ErrConfig = errors.New("passkey: invalid config")

// New checks cfg.
func New(cfg Config) (*Passkeys, error) {
	var errs []error
	if cfg.Store == nil || cfg.Ephemeral == nil || cfg.Sessions == nil || cfg.Logger == nil {
		errs = append(errs, fmt.Errorf("%w: Store, Ephemeral, Sessions and Logger are required", ErrConfig))
	}
	if cfg.RPID == "" || len(cfg.Origins) == 0 {
		errs = append(errs, fmt.Errorf("%w: RPID and Origins are required", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.CeremonyTTL <= 0 {
		cfg.CeremonyTTL = 5 * time.Minute
	}
	if cfg.RegisterMinACR == "" {
		cfg.RegisterMinACR = authn.ACRFaceLiveness
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "TrustID"
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: cfg.DisplayName, RPOrigins: cfg.Origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Passkeys{wa: wa, cfg: cfg}, nil
}

// user adapts a citizen and their credentials to webauthn.User.
type user struct {
	id, name string
	creds    []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *user) WebAuthnName() string                       { return u.id }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (p *Passkeys) loadUser(ctx context.Context, citizenID string) (*user, error) {
	c, err := p.cfg.Store.Citizens().Get(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	keys, err := p.cfg.Store.Passkeys().ListByCitizen(ctx, citizenID)
	if err != nil {
		return nil, err
	}
	u := &user{id: c.ID, name: c.Name}
	for _, k := range keys {
		var cred webauthn.Credential
		if err := json.Unmarshal(k.Credential, &cred); err != nil {
			return nil, fmt.Errorf("passkey: decode credential: %w", err)
		}
		u.creds = append(u.creds, cred)
	}
	return u, nil
}

func key(prefix, id string) string {
	h := sha256.Sum256([]byte(id))
	return prefix + base64.RawURLEncoding.EncodeToString(h[:])
}

func (p *Passkeys) saveSession(ctx context.Context, k string, s *webauthn.SessionData) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return p.cfg.Ephemeral.Set(ctx, k, b, p.cfg.CeremonyTTL)
}

// takeSession loads and deletes ceremony state: a challenge answers once.
func (p *Passkeys) takeSession(ctx context.Context, k string) (*webauthn.SessionData, error) {
	b, err := p.cfg.Ephemeral.Take(ctx, k)
	if err != nil {
		return nil, err
	}
	var s webauthn.SessionData
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Method implements authn.Method.
func (p *Passkeys) Method() string { return "passkey" }

// MaxACR implements authn.Method; with face + liveness earlier in the
// same session the provider raises it to two-factor assurance.
func (p *Passkeys) MaxACR() string { return authn.ACRPasskey }

// Begin returns the WebAuthn assertion options (navigator.credentials.get).
func (p *Passkeys) Begin(ctx context.Context, a *authn.Attempt) (any, error) {
	var (
		opts *protocol.CredentialAssertion
		sd   *webauthn.SessionData
		err  error
	)
	if a.CitizenID != "" {
		u, uerr := p.loadUser(ctx, a.CitizenID)
		if uerr != nil {
			return nil, uerr
		}
		if len(u.creds) == 0 {
			opts, sd, err = p.wa.BeginDiscoverableLogin()
		} else {
			opts, sd, err = p.wa.BeginLogin(u)
		}
	} else {
		opts, sd, err = p.wa.BeginDiscoverableLogin()
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	if err := p.saveSession(ctx, key("passkey:login:", a.ID), sd); err != nil {
		return nil, err
	}
	return opts, nil
}

// Finish verifies the assertion (the JSON body) and updates the credential.
func (p *Passkeys) Finish(ctx context.Context, a *authn.Attempt, r *http.Request) (*authn.Result, error) {
	sd, err := p.takeSession(ctx, key("passkey:login:", a.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: no ceremony: %v", authn.ErrAuthenticationFailed, err)
	}
	parsed, err := protocol.ParseCredentialRequestResponse(r)
	if err != nil {
		return nil, fmt.Errorf("%w: parse assertion: %v", authn.ErrAuthenticationFailed, err)
	}
	var found *user
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := p.loadUser(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		found = u
		return u, nil
	}
	var cred *webauthn.Credential
	if len(sd.UserID) > 0 {
		u, uerr := p.loadUser(ctx, string(sd.UserID))
		if uerr != nil {
			return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, uerr)
		}
		found = u
		cred, err = p.wa.ValidateLogin(u, *sd, parsed)
	} else {
		cred, err = p.wa.ValidateDiscoverableLogin(handler, *sd, parsed)
	}
	if err != nil || found == nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, err)
	}
	if cred.Authenticator.CloneWarning {
		return nil, fmt.Errorf("%w: sign counter went backwards (cloned authenticator?)", authn.ErrAuthenticationFailed)
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	now := p.cfg.Clock().UTC()
	if _, err := p.cfg.Store.Passkeys().Update(ctx, cred.ID, func(k *store.Passkey) error {
		if k.CitizenID != found.id {
			return fmt.Errorf("%w: credential of another citizen", authn.ErrAuthenticationFailed)
		}
		k.Credential, k.SignCount, k.LastUsedAt = b, cred.Authenticator.SignCount, now
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", authn.ErrAuthenticationFailed, err)
	}
	amr := []string{authn.AMRHardware}
	if cred.Flags.UserVerified {
		amr = append(amr, authn.AMRUser)
	}
	return &authn.Result{CitizenID: found.id, ACR: authn.ACRPasskey, AMR: amr, AuthTime: now}, nil
}

// Routes, relative to where cmd/ mounts Handler.
const (
	PathRegisterBegin  = "/passkeys/register/begin"
	PathRegisterFinish = "/passkeys/register/finish"
)

// Handler serves passkey registration for the signed-in citizen.
func (p *Passkeys) Handler() http.Handler {
	m := http.NewServeMux()
	m.Handle("POST "+PathRegisterBegin, httperr.Handle(p.cfg.Logger, p.registerBegin))
	m.Handle("POST "+PathRegisterFinish, httperr.Handle(p.cfg.Logger, p.registerFinish))
	return m
}

// signedIn returns the citizen of the session if the session's assurance
// is high enough to bind a new passkey to them.
// Registration also refuses cross-site requests (Sec-Fetch-Site) and an
// Origin that is not one of Config.Origins; the session cookie's SameSite
// already keeps it off cross-site POSTs, this does not rely on it alone.
func (p *Passkeys) signedIn(r *http.Request) (string, error) {
	if o := r.Header.Get("Origin"); r.Header.Get("Sec-Fetch-Site") == "cross-site" || (o != "" && !slices.Contains(p.cfg.Origins, o)) {
		return "", httperr.New(http.StatusForbidden, "cross_origin", "the request comes from another site")
	}
	id, acr, err := p.cfg.Sessions.SessionCitizen(r)
	if err != nil {
		return "", httperr.Unavailable(err)
	}
	if id == "" || !atLeast(acr, p.cfg.RegisterMinACR) {
		return "", httperr.New(http.StatusUnauthorized, "login_required", "sign in with face and liveness first")
	}
	return id, nil
}

func atLeast(acr, min string) bool { return authn.ACRRank(acr) >= authn.ACRRank(min) }

func (p *Passkeys) registerBegin(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := p.signedIn(r)
	if err != nil {
		return err
	}
	u, err := p.loadUser(ctx, id)
	if err != nil {
		return fmt.Errorf("passkey: load citizen: %w", err)
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	opts, sd, err := p.wa.BeginRegistration(u, webauthn.WithExclusions(exclude))
	if err == nil {
		err = p.saveSession(ctx, key("passkey:reg:", id), sd)
	}
	if err != nil {
		return fmt.Errorf("passkey: begin registration: %w", err)
	}
	return httperr.WriteJSON(w, http.StatusOK, opts)
}

func (p *Passkeys) registerFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := p.signedIn(r)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sd, err := p.takeSession(ctx, key("passkey:reg:", id))
	if err != nil {
		if httperr.IsUnavailable(err) {
			return err
		}
		return httperr.BadRequest("no_ceremony", "no registration in progress; start again").WithCause(err)
	}
	u, err := p.loadUser(ctx, id)
	if err != nil {
		return fmt.Errorf("passkey: load citizen: %w", err)
	}
	cred, err := p.wa.FinishRegistration(u, *sd, r)
	if err != nil {
		return httperr.BadRequest("registration_failed", "the passkey could not be registered").WithCause(err)
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("passkey: encode credential: %w", err)
	}
	now := p.cfg.Clock().UTC()
	name := r.URL.Query().Get("name")
	if len(name) > 64 {
		name = name[:64]
	}
	pk := &store.Passkey{CredentialID: cred.ID, CitizenID: id, Name: name, Credential: b,
		SignCount: cred.Authenticator.SignCount, CreatedAt: now, LastUsedAt: now}
	if err := p.cfg.Store.Passkeys().Create(ctx, pk); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return httperr.New(http.StatusConflict, "already_registered", "this passkey is already registered").WithCause(err)
		}
		return fmt.Errorf("passkey: store: %w", err)
	}
	return httperr.WriteJSON(w, http.StatusCreated, map[string]string{"credential_id": base64.RawURLEncoding.EncodeToString(cred.ID)})
}

// SessionsFunc adapts a function to Sessions (cmd/ builds the passkey
// method before the provider exists, so it passes a closure over it).
type SessionsFunc func(r *http.Request) (citizenID, acr string, err error)

// SessionCitizen implements Sessions.
func (f SessionsFunc) SessionCitizen(r *http.Request) (string, string, error) { return f(r) }
