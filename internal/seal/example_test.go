package seal_test

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/trustid/trustid/internal/seal"
)

func b64(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, seal.KeySize))
}

// Rotating the encryption key: add a new key and make it primary, keep the
// old one until every value has been resealed.
func Example_rotation() {
	old, _ := seal.New(seal.Config{Keys: map[string]string{"2025": b64(1)}, Primary: "2025", LookupKey: b64(9)})
	aad := seal.AAD("citizens", "id_number", "c42") // bound to table, column and row
	ct, _ := old.Seal([]byte("110101199003071234"), aad)

	ring, _ := seal.New(seal.Config{Keys: map[string]string{"2025": b64(1), "2026": b64(2)}, Primary: "2026", LookupKey: b64(9)})
	pt, _ := ring.Open(ct, aad)
	fmt.Println(string(pt), ring.NeedsRotation(ct))

	ct2, _ := ring.Seal(pt, aad)
	kid, _ := seal.KeyID(ct2)
	fmt.Println(kid, ring.NeedsRotation(ct2))

	_, err := ring.Open(ct2, seal.AAD("citizens", "id_number", "c43"))
	fmt.Println(err)
	// Output:
	// 110101199003071234 true
	// 2026 false
	// seal: message authentication failed
}
