package certs

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustid/trustid/authn/netnumber"
)

// TestCertificateCarriesNetworkNumberOnly decodes an issued certificate
// from its bytes (COSE_Sign1, then the CBOR claim map with integer keys,
// without this package's Claims type) and checks that it carries the
// holder's 网号 and no plaintext identity: not the name, not the ID number
// or any part of it that identifies (the birth date, the region code).
func TestCertificateCarriesNetworkNumberOnly(t *testing.T) {
	f := newFixture(t)
	is, _ := f.issue("c1")
	cit, err := f.st.Citizens().Get(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !netnumber.Valid(cit.NetworkNumber) {
		t.Fatalf("citizen has no valid network number after issue: %q", cit.NetworkNumber)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(is.Cert); err != nil {
		t.Fatalf("certificate is not a COSE_Sign1: %v", err)
	}
	var claims map[int]any
	if err := cbor.Unmarshal(msg.Payload, &claims); err != nil {
		t.Fatalf("payload is not a CBOR map: %v", err)
	}
	if got := claims[2]; got != cit.NetworkNumber {
		t.Fatalf("claim 2 = %v, want the network number %q", got, cit.NetworkNumber)
	}
	for k := range claims {
		if k < 1 || k > 9 {
			t.Errorf("unexpected claim %d", k)
		}
	}
	// No plaintext identity anywhere in the signed bytes, in any encoding
	// the claims could use.
	for _, leak := range []string{cit.Name, cit.IDNumber, cit.IDNumber[6:14], cit.IDNumber[:6], "Zhang"} {
		if bytes.Contains(is.Cert, []byte(leak)) || strings.Contains(string(msg.Payload), leak) {
			t.Errorf("certificate contains %q", leak)
		}
	}
	// The number is stable: a second certificate carries the same one.
	is2, _ := f.issue("c1")
	if is2.Claims.NetworkNumber != cit.NetworkNumber {
		t.Fatalf("second certificate carries %q, first %q", is2.Claims.NetworkNumber, cit.NetworkNumber)
	}
}
