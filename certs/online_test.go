package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trustid/trustid/internal/httperr"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/ephemeral/memory"
	"github.com/trustid/trustid/internal/store"
)

// bearerAuth authenticates verifiers and citizens by fixed bearer tokens.
type bearerAuth struct {
	verifiers map[string]Verifier
	citizens  map[string]CitizenSession
}

func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (a bearerAuth) AuthenticateVerifier(r *http.Request) (Verifier, error) {
	v, ok := a.verifiers[bearer(r)]
	if !ok {
		return Verifier{}, errors.New("unknown token")
	}
	return v, nil
}

func (a bearerAuth) AuthenticateCitizen(r *http.Request) (CitizenSession, error) {
	if bearer(r) == sessionStoreDown {
		return CitizenSession{}, fmt.Errorf("session: %w", httperr.ErrUnavailable)
	}
	c, ok := a.citizens[bearer(r)]
	if !ok {
		return CitizenSession{}, errors.New("unknown token")
	}
	return c, nil
}

// sessionStoreDown is a bearer token whose session cannot be read: the
// store that holds sessions is failing.
const sessionStoreDown = "session-store-down"

// TestCitizenSessionFault: a citizen endpoint whose session cannot be read
// answers 503 with Retry-After, not 401 not_signed_in (a fault is not a
// verdict); without a session it is 401 not_signed_in.
func TestCitizenSessionFault(t *testing.T) {
	o := newOnlineFixture(t)
	for _, tc := range []struct {
		token  string
		status int
		code   string
	}{
		{sessionStoreDown, http.StatusServiceUnavailable, ""},
		{"no-such-session", http.StatusUnauthorized, "not_signed_in"},
	} {
		for _, path := range []string{"/devices", "/log"} {
			st, body := o.call("GET", path, tc.token, nil)
			if st != tc.status || (tc.code != "" && !strings.Contains(string(body), tc.code)) {
				t.Errorf("GET %s with %s: %d %s, want %d %s", path, tc.token, st, body, tc.status, tc.code)
			}
		}
	}
}

// photoMatcher matches when the photo names the reference template's citizen.
type photoMatcher struct{}

func (photoMatcher) MatchPhoto(ctx context.Context, photo []byte, ref *store.Template) (bool, error) {
	return string(photo) == "face of "+ref.CitizenID, nil
}

type onlineFixture struct {
	*fixture
	svc      *Service
	srv      *httptest.Server
	eph      ephemeral.Store
	consents mapConsents
}

// mapConsents are the holders' consents for verifiers, by citizen and client.
type mapConsents map[[2]string][]string

func (m mapConsents) Get(_ context.Context, citizen, client string) (*store.Consent, error) {
	c, ok := m[[2]string{citizen, client}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &store.Consent{CitizenID: citizen, ClientID: client, Claims: c}, nil
}

// allow records that citizen allowed verifier to see attrs.
func (o *onlineFixture) allow(citizen, verifier string, attrs ...string) {
	o.consents[[2]string{citizen, verifier}] = attrs
}

func newOnlineFixture(t testing.TB) *onlineFixture {
	f := newFixture(t)
	eph := memory.New(memory.Options{Now: f.clock.Now, JanitorInterval: time.Hour})
	t.Cleanup(func() { _ = eph.Close() })
	o := &onlineFixture{fixture: f, eph: eph, consents: mapConsents{}}
	auth := bearerAuth{
		verifiers: map[string]Verifier{
			"hotel-a":  {ClientID: "hotel-a", Role: "hotel"},
			"hotel-b":  {ClientID: "hotel-b", Role: "hotel"},
			"vehicles": {ClientID: "vehicles", Role: "vehicle_office"},
			"norole":   {ClientID: "norole"},
		},
		citizens: map[string]CitizenSession{"citizen-c1": {CitizenID: "c1", ACR: testACR}},
	}
	var err error
	o.svc, err = NewService(ServiceConfig{
		Issuer: f.iss, Certs: f.st.Certificates(), Citizens: f.st.Citizens(), Templates: f.st.Templates(), Audit: f.st.Audit(),
		Replay: o.eph, Verifiers: auth, Citizen: auth, Faces: photoMatcher{}, Consents: o.consents,
		PseudonymKey: bytes.Repeat([]byte{7}, 32), Metrics: prometheus.NewRegistry(),
		Now: f.clock.Now, Rand: f.rand, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	o.srv = httptest.NewServer(o.svc.Handler())
	t.Cleanup(o.srv.Close)
	return o
}

// call posts body (JSON) or GETs when body is nil; it returns status and body.
func (o *onlineFixture) call(method, path, token string, body any) (int, []byte) {
	o.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, o.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := o.srv.Client().Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (o *onlineFixture) verify(token, payload, purpose string) (int, VerifyResponse, string) {
	o.t.Helper()
	status, body := o.call("POST", "/verify", token, VerifyRequest{Payload: payload, Purpose: purpose})
	var ok VerifyResponse
	var e struct{ Error struct{ Code string } }
	json.Unmarshal(body, &ok)
	json.Unmarshal(body, &e)
	return status, ok, e.Error.Code
}

func TestOnlineDisclosureByRole(t *testing.T) {
	o := newOnlineFixture(t)
	_, h := o.issue("c1")

	// Result only until the holder allows the verifier (MPS Order No. 173).
	status, hotel, code := o.verify("hotel-a", o.present(h, nil), "check_in")
	if status != 200 || len(hotel.Attributes) != 0 || fmt.Sprint(hotel.Withheld) != "[name id_number_masked]" || hotel.Holder == "" {
		t.Fatalf("hotel without consent: %d %s %+v", status, code, hotel)
	}
	o.allow("c1", "hotel-a", AttrName, AttrIDNumberMasked)
	o.allow("c1", "vehicles", AttrName, AttrIDNumber)
	status, hotel, code = o.verify("hotel-a", o.present(h, nil), "check_in")
	if status != 200 {
		t.Fatalf("hotel: %d %s", status, code)
	}
	want := map[string]string{AttrName: "Zhang San", AttrIDNumberMasked: "110***********1234"}
	if fmt.Sprint(hotel.Attributes) != fmt.Sprint(want) {
		t.Errorf("hotel got %v, want %v", hotel.Attributes, want)
	}

	status, veh, code := o.verify("vehicles", o.present(h, nil), "vehicle_registration")
	if status != 200 {
		t.Fatalf("vehicle office: %d %s", status, code)
	}
	if veh.Attributes[AttrIDNumber] != "110101199003071234" || veh.Attributes[AttrLevel] != "high" || veh.Attributes[AttrExpires] == "" {
		t.Errorf("vehicle office got %v", veh.Attributes)
	}

	_, hotelB, _ := o.verify("hotel-b", o.present(h, nil), "check_in")
	_, hotelA2, _ := o.verify("hotel-a", o.present(h, nil), "check_in")
	if hotel.Holder == "" || hotel.Holder == veh.Holder || hotel.Holder == hotelB.Holder {
		t.Errorf("pseudonyms link verifiers: %q %q %q", hotel.Holder, veh.Holder, hotelB.Holder)
	}
	if hotelA2.Holder != hotel.Holder {
		t.Errorf("one verifier sees two pseudonyms: %q %q", hotel.Holder, hotelA2.Holder)
	}
}

func TestOnlineRefusals(t *testing.T) {
	o := newOnlineFixture(t)
	is, h := o.issue("c1")
	nn, changed := changedNumber(is)

	other := newFixture(t)
	other.iss.cfg.Rand = newRand(42)
	_, foreign := other.issue("c1")

	replayed := o.present(h, nil)
	if s, _, code := o.verify("hotel-a", replayed, "check_in"); s != 200 {
		t.Fatalf("first verification: %d %s", s, code)
	}
	stale := o.present(h, nil)

	cases := []struct {
		name, token, payload, purpose string
		advance                       time.Duration // clock moves before the call
		status                        int
		code                          string
	}{
		{"replayed presentation", "hotel-a", replayed, "check_in", 0, 409, "replayed_presentation"},
		{"replayed at another verifier", "hotel-b", replayed, "check_in", 0, 409, "replayed_presentation"},
		{"tampered payload", "hotel-a", tamper(t, o.present(h, nil), nn, changed), "check_in", 0, 422, "tampered_payload"},
		{"wrong issuer key", "hotel-a", o.present(foreign, nil), "check_in", 0, 422, "unknown_issuer_key"},
		{"hotel asks a vehicle office purpose", "hotel-a", o.present(h, nil), "vehicle_registration", 0, 403, "purpose_not_allowed"},
		{"verifier without a role", "norole", o.present(h, nil), "check_in", 0, 403, "purpose_not_allowed"},
		{"unauthenticated verifier", "", o.present(h, nil), "check_in", 0, 401, "verifier_unauthenticated"},
		{"garbage", "hotel-a", "TID1:%%%", "check_in", 0, 400, "malformed_payload"},
		{"expired presentation", "hotel-a", stale, "check_in", DefaultWindow + DefaultSkew + time.Second, 422, "expired_presentation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o.clock.Advance(tc.advance)
			status, _, code := o.verify(tc.token, tc.payload, tc.purpose)
			if status != tc.status || code != tc.code {
				t.Errorf("got %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	o := newOnlineFixture(t)
	ctx := context.Background()

	// Reissue to the same device revokes its previous certificate
	// automatically; another device of the citizen keeps its own.
	dev := o.deviceKey()
	_, first := o.issueTo("c1", dev)
	_, other := o.issue("c1")
	secondIs, second := o.issueTo("c1", dev)
	if s, _, code := o.verify("hotel-a", o.present(other, nil), "check_in"); s != 200 {
		t.Errorf("the citizen's other device: %d %q", s, code)
	}
	if s, _, code := o.verify("hotel-a", o.present(first, nil), "check_in"); code != "revoked_certificate" {
		t.Errorf("superseded certificate: %d %q", s, code)
	}
	if s, _, code := o.verify("hotel-a", o.present(second, nil), "check_in"); s != 200 {
		t.Fatalf("current certificate: %d %q", s, code)
	}

	// The signed status list is cached: ECDSA signatures are randomised, so
	// identical bytes mean the same token was served again.
	_, s1 := o.call("GET", "/status", "", nil)
	_, s2 := o.call("GET", "/status", "", nil)
	if !bytes.Equal(s1, s2) {
		t.Error("status list re-signed within its cache time")
	}

	// Offline verifiers see the revocation through the signed status list.
	offline := func(h *Holder) error {
		// The signed list is served from a cache for StatusCacheTTL.
		o.clock.Advance(31 * time.Second)
		status, tok := o.call("GET", "/status", "", nil)
		if status != 200 {
			t.Fatalf("status list: %d", status)
		}
		_, keys := o.call("GET", "/keys", "", nil)
		trust, err := ParseTrustList(keys)
		if err != nil {
			t.Fatal(err)
		}
		sl, err := ParseStatusList(tok, trust, o.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = VerifyOptions{Status: sl}.Verify(o.present(h, nil), trust, o.clock.Now())
		return err
	}
	if err := offline(first); !errors.Is(err, ErrRevoked) {
		t.Errorf("offline superseded: %v", err)
	}
	if err := offline(second); err != nil {
		t.Errorf("offline current: %v", err)
	}

	// The citizen revokes that device (phone lost), from any session.
	if s, body := o.call("POST", "/devices/revoke", "citizen-c1", RevokeDeviceRequest{Serial: secondIs.Serial}); s != 200 {
		t.Fatalf("revoke: %d %s", s, body)
	}
	if _, _, code := o.verify("hotel-a", o.present(second, nil), "check_in"); code != "revoked_certificate" {
		t.Errorf("after citizen revocation: %q", code)
	}
	if err := offline(second); !errors.Is(err, ErrRevoked) {
		t.Errorf("offline after citizen revocation: %v", err)
	}

	// An operator revokes.
	third, h3 := o.issue("c1")
	if err := o.iss.RevokeByOperator(ctx, third.Serial, "alice", "fraud report"); err != nil {
		t.Fatal(err)
	}
	if _, _, code := o.verify("hotel-a", o.present(h3, nil), "check_in"); code != "revoked_certificate" {
		t.Errorf("after operator revocation: %q", code)
	}
}

func TestFaceCheckAndCitizenLog(t *testing.T) {
	o := newOnlineFixture(t)
	_, h := o.issue("c1")
	s, resp, code := o.verify("hotel-a", o.present(h, nil), "check_in")
	if s != 200 || !resp.FaceCheck {
		t.Fatalf("verify: %d %q face_check=%v", s, code, resp.FaceCheck)
	}
	for _, tc := range []struct {
		name, token, photo string
		status             int
		want               string
	}{
		{"same person", "hotel-a", "face of c1", 200, `{"match":true}`},
		{"another person", "hotel-a", "face of c2", 200, `{"match":false}`},
		{"another verifier cannot use the handle", "hotel-b", "face of c1", 404, "verification_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := o.call("POST", "/face-check", tc.token, FaceCheckRequest{VerificationID: resp.VerificationID, Photo: []byte(tc.photo)})
			if st != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %s, want %d %s", st, body, tc.status, tc.want)
			}
		})
	}
	o.verify("hotel-a", "TID1:%%%", "check_in")         // unattributable: not in the log
	o.verify("vehicles", o.present(h, nil), "check_in") // refused by policy, attributed
	if got := counterValue(t, o.svc.verifications.WithLabelValues("purpose_not_allowed")); got != 1 {
		t.Errorf("certs_verifications_total{outcome=purpose_not_allowed} = %v", got)
	}
	if got := counterValue(t, o.svc.faceChecks.WithLabelValues("match")); got != 1 {
		t.Errorf("certs_face_checks_total{outcome=match} = %v", got)
	}
	st, body := o.call("GET", "/log", "citizen-c1", nil)
	if st != 200 {
		t.Fatalf("log: %d %s", st, body)
	}
	var log struct{ Entries []LogEntry }
	if err := json.Unmarshal(body, &log); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log.Entries {
		got = append(got, e.By+" "+e.Verifier+" "+e.Action+" "+e.Purpose+" "+e.Outcome)
	}
	want := []string{
		"verifier vehicles verify check_in purpose_not_allowed",
		"verifier hotel-a face_check check_in no_match",
		"verifier hotel-a face_check check_in match",
		"verifier hotel-a verify check_in ok",
		"citizen  issue  ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st, _ := o.call("GET", "/log", "", nil); st != 401 {
		t.Errorf("log without citizen auth: %d", st)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestReplayCacheLoss: a QR refused as replayed stays refused after the
// replay cache is lost (Redis restart or flush), while a QR made after the
// loss verifies (issue #16, point 4: accepted with 200 before the fix).
func TestReplayCacheLoss(t *testing.T) {
	o := newOnlineFixture(t)
	_, h := o.issue("c1")
	o.clock.Advance(5 * time.Second)
	qr := o.present(h, nil)
	if s, _, code := o.verify("hotel-a", qr, "check_in"); s != 200 {
		t.Fatalf("first verification: %d %s", s, code)
	}
	if _, _, code := o.verify("hotel-a", qr, "check_in"); code != ErrReplayed.Code {
		t.Fatalf("replay before the loss: %q", code)
	}
	// The cache forgets everything.
	if err := o.eph.(*memory.Store).Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.clock.Advance(2 * time.Second)
	if s, _, code := o.verify("hotel-a", qr, "check_in"); code != ErrReplayUnknown.Code {
		t.Fatalf("replay after the loss: %d %q, want %s", s, code, ErrReplayUnknown.Code)
	}
	o.clock.Advance(time.Second)
	if s, _, code := o.verify("hotel-a", o.present(h, nil), "check_in"); s != 200 {
		t.Fatalf("fresh QR after the loss: %d %s", s, code)
	}
}

// TestPurposesOfTheRole: a verifier learns its role's purposes (the desk
// page offers only those); an unauthenticated caller learns nothing.
func TestPurposesOfTheRole(t *testing.T) {
	o := newOnlineFixture(t)
	for token, want := range map[string]string{
		"hotel-a":  `{"purposes":["check_in"],"role":"hotel"}`,
		"vehicles": `{"purposes":["driving_licence","vehicle_registration"],"role":"vehicle_office"}`,
		"norole":   `{"purposes":[],"role":""}`,
	} {
		status, body := o.call("GET", "/purposes", token, nil)
		if status != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("%s: %d %s, want %s", token, status, body, want)
		}
	}
	if status, _ := o.call("GET", "/purposes", "", nil); status != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d", status)
	}
}
