package ephemeral

import (
	"errors"
	"testing"
	"time"
)

func TestSlotKey(t *testing.T) {
	cases := []struct{ name, key, want string }{
		{"no tag", "oidc:at:abc", "oidc:at:abc"},
		{"tag", "oidc:atend:{req1}", "req1"},
		{"first pair wins", "a:{x}:{y}", "x"},
		{"empty tag is no tag", "a:{}:{y}", "a:{}:{y}"},
		{"unclosed", "a:{x", "a:{x"},
		{"close before open", "a}b{c}", "c"},
		{"memory tag", "certs:replay:" + MemoryTag(0x5a) + ":digest", "5a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := SlotKey(c.key); got != c.want {
				t.Errorf("SlotKey(%q) = %q, want %q", c.key, got, c.want)
			}
		})
	}
	w := func(k string) []Write { return []Write{{Key: k, Value: []byte("v"), TTL: time.Minute}} }
	if err := CheckSlot("oidc:atend:{r}", w("oidc:atcur:{r}")); err != nil {
		t.Errorf("same tag: %v", err)
	}
	if err := CheckSlot("oidc:atend:{r}", w("oidc:atcur:{s}")); !errors.Is(err, ErrInvalid) {
		t.Errorf("different tags: %v, want ErrInvalid", err)
	}
}
