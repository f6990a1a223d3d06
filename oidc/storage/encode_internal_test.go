package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/ory/fosite"
)

// TestEncodeInOncePerRequest: inside a transaction the same request object
// is encoded once (the refresh stores it as both tokens); each caller gets
// its own bytes, and another request object its own encoding.
func TestEncodeInOncePerRequest(t *testing.T) {
	s := &Storage{}
	ctx, err := s.BeginTX(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client := &fosite.DefaultClient{ID: "c"}
	r1 := &fosite.Request{ID: "r1", Client: client, GrantedScope: fosite.Arguments{"openid"}}
	r2 := &fosite.Request{ID: "r2", Client: client}
	a, err := s.encodeIn(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if s.txFrom(ctx).encoded != r1 {
		t.Fatal("the encoding was not kept")
	}
	b, _ := s.encodeIn(ctx, r1)
	if !bytes.Equal(a, b) || &a[0] == &b[0] {
		t.Fatalf("same request: equal copies expected")
	}
	a[0] = 'x'
	if c, _ := s.encodeIn(ctx, r1); c[0] == 'x' {
		t.Fatal("a caller's change reached the kept encoding")
	}
	d, _ := s.encodeIn(ctx, r2)
	want, _ := encode(r2)
	if !bytes.Equal(d, want) || bytes.Equal(d, b) {
		t.Fatalf("another request got %s", d)
	}
	// Outside a transaction nothing is kept.
	if e, _ := s.encodeIn(context.Background(), r1); !bytes.Equal(e, b) {
		t.Fatalf("outside a transaction: %s", e)
	}
}
