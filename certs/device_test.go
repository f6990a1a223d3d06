package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/trustid/trustid/internal/ephemeral"
)

// jwkOf is the public JWK of a device key, as the browser exports it.
func jwkOf(t testing.TB, pub *ecdsa.PublicKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pop signs the proof of possession as the browser does (r||s).
func pop(t testing.TB, dev *ecdsa.PrivateKey, nonce []byte) string {
	t.Helper()
	sig, err := ProvePossession(crand.Reader, dev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// challenge asks the service for an issuance nonce as citizen token tok.
func (o *onlineFixture) challenge(tok string) []byte {
	o.t.Helper()
	st, body := o.call("POST", "/devices/challenge", tok, struct{}{})
	if st != 200 {
		o.t.Fatalf("challenge: %d %s", st, body)
	}
	var out struct{ Nonce string }
	json.Unmarshal(body, &out)
	n, err := base64URL(out.Nonce)
	if err != nil {
		o.t.Fatal(err)
	}
	return n
}

// bind runs the browser's issuance: challenge, proof, issue.
func (o *onlineFixture) bind(dev *ecdsa.PrivateKey, name string) (int, []byte) {
	o.t.Helper()
	n := o.challenge("citizen-c1")
	return o.call("POST", "/issue", "citizen-c1", IssueHTTPRequest{
		DeviceKey: jwkOf(o.t, &dev.PublicKey), Nonce: base64.RawURLEncoding.EncodeToString(n), Proof: pop(o.t, dev, n), Name: name,
	})
}

func (o *onlineFixture) freshLogin() {
	o.svc.cfg.Citizen.(bearerAuth).citizens["citizen-c1"] = CitizenSession{CitizenID: "c1", AuthTime: o.clock.Now().Add(-time.Minute), ACR: testACR}
}

func TestIssueOverHTTP(t *testing.T) {
	o := newOnlineFixture(t)
	dev := o.deviceKey()
	auth := o.svc.cfg.Citizen.(bearerAuth)
	for _, tc := range []struct {
		name     string
		authTime time.Time
		acr      string
		status   int
		code     string
	}{
		{"recent high assurance", o.clock.Now().Add(-time.Minute), testACR, 200, ""},
		{"stale proof", o.clock.Now().Add(-time.Hour), testACR, 403, "stale_authentication"},
		{"password login", o.clock.Now(), "urn:trustid:acr:password", 403, "insufficient_assurance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth.citizens["citizen-c1"] = CitizenSession{CitizenID: "c1", AuthTime: tc.authTime, ACR: tc.acr}
			st, body := o.bind(dev, "test phone")
			if st != tc.status || (tc.code != "" && !strings.Contains(string(body), tc.code)) {
				t.Fatalf("got %d %s", st, body)
			}
			if st != 200 {
				return
			}
			var out IssueHTTPResponse
			json.Unmarshal(body, &out)
			cert, err := base64URL(out.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if out.Name != "Zhang San" || out.Level != "high" {
				t.Errorf("issue answer %+v", out)
			}
			h := &Holder{Cert: cert, Key: dev, Now: o.clock.Now, Rand: o.rand}
			if s, _, code := o.verify("hotel-a", o.present(h, nil), "check_in"); s != 200 {
				t.Errorf("verify issued certificate: %d %s", s, code)
			}
		})
	}
}

// TestIssueBadInput: malformed keys, the wrong curve, a private key, a bad
// proof of possession and oversize or mistyped bodies are refused with a
// stable 4xx code, and nothing is issued or recorded.
func TestIssueBadInput(t *testing.T) {
	o := newOnlineFixture(t)
	o.freshLogin()
	dev, other := o.deviceKey(), o.deviceKey()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), o.rand)
	if err != nil {
		t.Fatal(err)
	}
	good := jwkOf(t, &dev.PublicKey)
	var m map[string]any
	json.Unmarshal(good, &m)
	with := func(k string, v any) json.RawMessage {
		c := map[string]any{}
		for a, b := range m {
			c[a] = b
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		return b
	}
	// A point off the curve: y+1.
	y := new(big.Int).Add(dev.Y, big.NewInt(1)).FillBytes(make([]byte, 32))
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: dev})
	b64 := base64.RawURLEncoding.EncodeToString
	// Nonces are fetched per case: a consumed nonce is single-use.
	type req struct {
		key                json.RawMessage
		nonce, proof, name string
		raw, contentType   string
		otherCitizenNonce  bool
		reuseConsumedNonce bool
	}
	for _, tc := range []struct {
		name   string
		req    func(n []byte) req
		status int
		code   string
	}{
		{"key not JSON object", func(n []byte) req { return req{key: json.RawMessage(`"abc"`), nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"key missing", func(n []byte) req { return req{nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"kty RSA", func(n []byte) req { return req{key: with("kty", "RSA"), nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"x not base64url", func(n []byte) req { return req{key: with("x", "@@@"), nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"point off the curve", func(n []byte) req { return req{key: with("y", b64(y)), nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"wrong curve P-384", func(n []byte) req { return req{key: jwkOf(t, &p384.PublicKey), nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"private key sent", func(n []byte) req { return req{key: privJWK, nonce: b64(n), proof: pop(t, dev, n)} }, 400, "invalid_device_key"},
		{"proof by another key", func(n []byte) req { return req{key: good, nonce: b64(n), proof: pop(t, other, n)} }, 422, "invalid_proof"},
		{"proof over another nonce", func(n []byte) req { return req{key: good, nonce: b64(n), proof: pop(t, dev, make([]byte, 32))} }, 422, "invalid_proof"},
		{"proof too short", func(n []byte) req { return req{key: good, nonce: b64(n), proof: b64(make([]byte, 63))} }, 422, "invalid_proof"},
		{"proof not base64url", func(n []byte) req { return req{key: good, nonce: b64(n), proof: "***"} }, 422, "invalid_proof"},
		{"nonce never issued", func(n []byte) req {
			z := make([]byte, 32)
			return req{key: good, nonce: b64(z), proof: pop(t, dev, z)}
		}, 422, "invalid_proof"},
		{"nonce of another citizen", func(n []byte) req {
			return req{key: good, nonce: b64(n), proof: pop(t, dev, n), otherCitizenNonce: true}
		}, 422, "invalid_proof"},
		{"nonce used twice", func(n []byte) req {
			return req{key: good, nonce: b64(n), proof: pop(t, dev, n), reuseConsumedNonce: true}
		}, 422, "invalid_proof"},
		{"name too long", func(n []byte) req {
			return req{key: good, nonce: b64(n), proof: pop(t, dev, n), name: strings.Repeat("x", 65)}
		}, 400, "invalid_request"},
		{"oversize body", func(n []byte) req { return req{raw: `{"name":"` + strings.Repeat("x", 5000) + `"}`} }, 413, "body_too_large"},
		{"not JSON", func(n []byte) req { return req{raw: `device_key=x`, contentType: "application/x-www-form-urlencoded"} }, 415, "unsupported_media_type"},
		{"unknown field", func(n []byte) req { return req{raw: `{"device_key":{},"private_key":"x"}`} }, 400, "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n []byte
			r := tc.req(nil)
			if r.otherCitizenNonce {
				// A nonce given to another citizen's session.
				var err error
				if n, err = o.svc.IssueNonce(context.Background(), "c2"); err != nil {
					t.Fatal(err)
				}
			} else {
				n = o.challenge("citizen-c1")
			}
			r = tc.req(n)
			if r.reuseConsumedNonce {
				// Spend the nonce on a good request of another device
				// first, then replay it: refused.
				if st, b := o.call("POST", "/issue", "citizen-c1", IssueHTTPRequest{DeviceKey: jwkOf(t, &other.PublicKey), Nonce: b64(n), Proof: pop(t, other, n)}); st != 200 {
					t.Fatalf("spending the nonce: %d %s", st, b)
				}
			}
			before := o.snapshot()
			body := r.raw
			if body == "" {
				b, _ := json.Marshal(IssueHTTPRequest{DeviceKey: r.key, Nonce: r.nonce, Proof: r.proof, Name: r.name})
				body = string(b)
			}
			ct := r.contentType
			if ct == "" {
				ct = "application/json"
			}
			hr, _ := http.NewRequest("POST", o.srv.URL+"/issue", strings.NewReader(body))
			hr.Header.Set("Content-Type", ct)
			hr.Header.Set("Authorization", "Bearer citizen-c1")
			resp, err := o.srv.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct{ Error struct{ Code string } }
			json.Unmarshal(out, &e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, out, tc.status, tc.code)
			}
			if after := o.snapshot(); after != before {
				t.Errorf("refused request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot summarises what an issuance would change: the citizen's
// certificates and the audit log's length.
func (o *onlineFixture) snapshot() string {
	o.t.Helper()
	ds, err := o.iss.Devices(context.Background(), "c1")
	if err != nil {
		o.t.Fatal(err)
	}
	evs, err := o.st.Audit().List(context.Background(), 0, 1000)
	if err != nil {
		o.t.Fatal(err)
	}
	var sb strings.Builder
	for _, d := range ds {
		sb.WriteString(d.Serial + ":" + d.Status + " ")
	}
	sb.WriteString("audit=" + strings.Repeat("|", len(evs)))
	return sb.String()
}

func TestDevices(t *testing.T) {
	o := newOnlineFixture(t)
	o.freshLogin()
	o.iss.cfg.MaxDevices = 2
	phone, tablet, third := o.deviceKey(), o.deviceKey(), o.deviceKey()
	issued := map[string]*Holder{}
	for _, d := range []struct {
		name string
		key  *ecdsa.PrivateKey
	}{{"phone", phone}, {"tablet", tablet}} {
		st, body := o.bind(d.key, d.name)
		if st != 200 {
			t.Fatalf("%s: %d %s", d.name, st, body)
		}
		var out IssueHTTPResponse
		json.Unmarshal(body, &out)
		cert, _ := base64URL(out.Certificate)
		issued[d.name] = &Holder{Cert: cert, Key: d.key, Now: o.clock.Now, Rand: o.rand}
		o.clock.Advance(time.Second)
	}
	// A third device is over the limit; nothing changes.
	before := o.snapshot()
	if st, body := o.bind(third, "laptop"); st != 409 || !strings.Contains(string(body), "too_many_devices") {
		t.Fatalf("third device: %d %s", st, body)
	}
	if after := o.snapshot(); after != before {
		t.Errorf("refused third device changed the store: %s -> %s", before, after)
	}
	// Both verify; the phone's use shows in the list.
	o.clock.Advance(time.Second)
	if s, _, code := o.verify("hotel-a", o.present(issued["phone"], nil), "check_in"); s != 200 {
		t.Fatalf("phone: %d %s", s, code)
	}
	list := func() []Device {
		st, body := o.call("GET", "/devices", "citizen-c1", nil)
		if st != 200 {
			t.Fatalf("devices: %d %s", st, body)
		}
		var out struct {
			Devices    []Device
			MaxDevices int `json:"max_devices"`
		}
		json.Unmarshal(body, &out)
		if out.MaxDevices != 2 {
			t.Errorf("max_devices = %d", out.MaxDevices)
		}
		return out.Devices
	}
	ds := list()
	if len(ds) != 2 || ds[0].Name != "tablet" || ds[1].Name != "phone" || ds[1].LastUsedAt.IsZero() || !ds[0].LastUsedAt.IsZero() {
		t.Fatalf("devices = %+v", ds)
	}
	if tp, _ := Thumbprint(&phone.PublicKey); ds[1].KeyThumbprint != tp {
		t.Errorf("phone thumbprint %q, want %q", ds[1].KeyThumbprint, tp)
	}
	// Revoke the phone (lost) from the other device's session.
	for _, tc := range []struct {
		name, serial string
		status       int
		code         string
	}{
		{"malformed serial", "xyz", 400, "invalid_request"},
		{"unknown serial", strings.Repeat("00", 10), 404, "device_not_found"},
		{"the phone", ds[1].Serial, 200, ""},
	} {
		before := o.snapshot()
		st, body := o.call("POST", "/devices/revoke", "citizen-c1", RevokeDeviceRequest{Serial: tc.serial})
		if st != tc.status || (tc.code != "" && !strings.Contains(string(body), tc.code)) {
			t.Fatalf("%s: %d %s", tc.name, st, body)
		}
		if tc.status != 200 && o.snapshot() != before {
			t.Errorf("%s changed the store", tc.name)
		}
	}
	o.clock.Advance(time.Second)
	if _, _, code := o.verify("hotel-a", o.present(issued["phone"], nil), "check_in"); code != "revoked_certificate" {
		t.Errorf("revoked phone: %q", code)
	}
	if s, _, code := o.verify("hotel-a", o.present(issued["tablet"], nil), "check_in"); s != 200 {
		t.Errorf("tablet after the phone's revocation: %d %q", s, code)
	}
	// Now a new device fits again.
	if st, body := o.bind(third, "laptop"); st != 200 {
		t.Errorf("device after a revocation: %d %s", st, body)
	}
	// Another citizen cannot revoke c1's device.
	o.addCitizen("c2", "110101199001011111", "Li Si")
	o.svc.cfg.Citizen.(bearerAuth).citizens["citizen-c2"] = CitizenSession{CitizenID: "c2", AuthTime: o.clock.Now(), ACR: testACR}
	if st, _ := o.call("POST", "/devices/revoke", "citizen-c2", RevokeDeviceRequest{Serial: ds[0].Serial}); st != 404 {
		t.Errorf("foreign revocation: %d", st)
	}
	if st, _ := o.call("GET", "/devices", "", nil); st != 401 {
		t.Errorf("devices without a session: %d", st)
	}
}

func TestPurposeBoundPresentation(t *testing.T) {
	o := newOnlineFixture(t)
	_, h := o.issue("c1")
	raw, err := h.PresentFor(nil, "check_in")
	if err != nil {
		t.Fatal(err)
	}
	trust := o.trust()
	if _, err := (VerifyOptions{Purpose: "vehicle_registration"}).Verify(EncodePayload(raw), trust, o.clock.Now()); CodeOf(err) != "purpose_mismatch" {
		t.Errorf("offline other purpose: %v", err)
	}
	res, err := (VerifyOptions{Purpose: "check_in"}).Verify(EncodePayload(raw), trust, o.clock.Now())
	if err != nil || res.Purpose != "check_in" {
		t.Fatalf("offline same purpose: %v %+v", err, res)
	}
	if s, _, code := o.verify("hotel-a", EncodePayload(raw), "check_in"); s != 200 {
		t.Errorf("online same purpose: %d %s", s, code)
	}
	raw, _ = h.PresentFor(nil, "check_in")
	if s, _, code := o.verify("vehicles", EncodePayload(raw), "vehicle_registration"); code != "purpose_mismatch" {
		t.Errorf("online other purpose: %d %s", s, code)
	}
}

// recordingStore keeps every value written to the ephemeral store.
type recordingStore struct {
	ephemeral.Store
	values [][]byte
}

func (r *recordingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.values = append(r.values, []byte(key), value)
	return r.Store.Set(ctx, key, value, ttl)
}

func (r *recordingStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.values = append(r.values, []byte(key), value)
	return r.Store.SetNX(ctx, key, value, ttl)
}

// TestNoPrivateHolderKeyStored: the API takes only a public key, and after
// a device is bound, verified and revoked, no table of the database and no
// value written to the ephemeral store holds the device's private key in
// any encoding; the certificates table has no column for one, and its
// device_key column holds the public key (PKIX).
func TestNoPrivateHolderKeyStored(t *testing.T) {
	o := newOnlineFixture(t)
	rec := &recordingStore{Store: o.eph}
	o.svc.cfg.Replay = rec
	o.freshLogin()
	dev := o.deviceKey()
	st, body := o.bind(dev, "phone")
	if st != 200 {
		t.Fatalf("bind: %d %s", st, body)
	}
	var out IssueHTTPResponse
	json.Unmarshal(body, &out)
	cert, _ := base64URL(out.Certificate)
	h := &Holder{Cert: cert, Key: dev, Now: o.clock.Now, Rand: o.rand}
	if s, _, code := o.verify("hotel-a", o.present(h, nil), "check_in"); s != 200 {
		t.Fatalf("verify: %d %s", s, code)
	}
	if s, b := o.call("POST", "/devices/revoke", "citizen-c1", RevokeDeviceRequest{Serial: out.Serial}); s != 200 {
		t.Fatalf("revoke: %d %s", s, b)
	}

	d, err := dev.Bytes() // the private scalar, 32 bytes
	if err != nil {
		t.Fatal(err)
	}
	forms := [][]byte{d, []byte(hex.EncodeToString(d)), []byte(base64.RawURLEncoding.EncodeToString(d)), []byte(base64.StdEncoding.EncodeToString(d))}
	holds := func(b []byte) bool {
		return slices.ContainsFunc(forms, func(f []byte) bool { return bytes.Contains(b, f) })
	}
	for _, v := range rec.values {
		if holds(v) {
			t.Fatalf("the ephemeral store was given the private key")
		}
	}
	if len(rec.values) == 0 {
		t.Fatal("recording store saw nothing (the test would prove nothing)")
	}

	db, err := sql.Open("sqlite", "file:"+o.path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := queryStrings(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if !slices.Contains(tables, "certificates") {
		t.Fatalf("tables %v", tables)
	}
	cells := 0
	for _, tb := range tables {
		rows, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var b []byte
				switch v := v.(type) {
				case []byte:
					b = v
				case string:
					b = []byte(v)
				}
				cells++
				if holds(b) {
					t.Fatalf("table %s column %s holds the private device key", tb, cols[i])
				}
			}
		}
		rows.Close()
	}
	if cells < 20 {
		t.Fatalf("only %d cells read", cells)
	}
	// The schema: the certificates table's columns, none for a private key.
	cols := queryStrings(t, db, `SELECT name FROM pragma_table_info('certificates') ORDER BY cid`)
	want := []string{"serial", "citizen_id", "status", "device_key", "key_id", "level", "payload", "issued_at", "expires_at",
		"revoked_at", "revoke_reason", "status_index", "device_name", "last_used_at"}
	if !slices.Equal(cols, want) {
		t.Errorf("certificates columns %v, want %v (a new column must not hold holder secrets)", cols, want)
	}
	c, err := o.st.Certificates().Get(context.Background(), out.Serial)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := parsePKIX(c.DeviceKey)
	if err != nil || !pk.Equal(&dev.PublicKey) {
		t.Errorf("device_key is not the device's public key: %v", err)
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func parsePKIX(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	pk, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not ECDSA")
	}
	return pk, nil
}
