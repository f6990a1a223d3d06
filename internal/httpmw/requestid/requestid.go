// Package requestid carries the request id in a context. It is separate
// from httpmw (which sets it) so that httperr (which reports it, and which
// httpmw uses) can read it without an import cycle.
package requestid

import "context"

type ctxKey struct{}

// With returns a copy of ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id in ctx, or "" if there is none.
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}
