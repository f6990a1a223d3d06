package requestid

import (
	"context"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	if got := From(ctx); got != "" {
		t.Fatalf("From(empty) = %q", got)
	}
	ctx = With(ctx, "abc")
	if got := From(ctx); got != "abc" {
		t.Fatalf("From = %q, want abc", got)
	}
	type otherKey struct{}
	if got := From(context.WithValue(ctx, otherKey{}, "other")); got != "abc" {
		t.Fatalf("From through a derived context = %q", got)
	}
}
