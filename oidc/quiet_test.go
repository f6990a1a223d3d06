package oidc

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
)

// countingHandler is a token endpoint handler that can handle only the
// grant type it is given and counts the calls that reach it.
type countingHandler struct {
	grant           string
	handled, filled int
}

func (h *countingHandler) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	h.handled++
	return nil
}

func (h *countingHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	h.filled++
	return nil
}

func (h *countingHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *countingHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(h.grant)
}

func TestQuietTokenHandlers(t *testing.T) {
	cc, rt := &countingHandler{grant: "client_credentials"}, &countingHandler{grant: "refresh_token"}
	hs := fosite.TokenEndpointHandlers{cc, rt}
	quietTokenHandlers(hs)
	quietTokenHandlers(hs) // idempotent: no double wrapping
	for _, h := range hs {
		if q, ok := h.(quietTokenHandler); !ok {
			t.Fatalf("%T not wrapped", h)
		} else if _, twice := q.TokenEndpointHandler.(quietTokenHandler); twice {
			t.Fatal("wrapped twice")
		}
	}
	ctx := context.Background()
	req := fosite.NewAccessRequest(nil)
	req.GrantTypes = fosite.Arguments{"client_credentials"}
	resp := fosite.NewAccessResponse()
	for _, h := range hs {
		herr := h.HandleTokenEndpointRequest(ctx, req)
		perr := h.PopulateTokenEndpointResponse(ctx, req, resp)
		if h.(quietTokenHandler).TokenEndpointHandler == fosite.TokenEndpointHandler(cc) {
			if herr != nil || perr != nil {
				t.Errorf("matching handler: %v, %v", herr, perr)
			}
			continue
		}
		if !errors.Is(herr, fosite.ErrUnknownRequest) || !errors.Is(perr, fosite.ErrUnknownRequest) {
			t.Errorf("declining handler: %v, %v, want ErrUnknownRequest", herr, perr)
		}
	}
	if cc.handled != 1 || cc.filled != 1 || rt.handled != 0 || rt.filled != 0 {
		t.Errorf("calls: cc %d/%d, rt %d/%d; want 1/1 and 0/0", cc.handled, cc.filled, rt.handled, rt.filled)
	}
}

// TestQuietOpenIDRefresh: fosite's OpenID Connect refresh handler is
// turned away without being called (so without its stack capture) for a
// refresh granted no "openid" scope, and reached for one that was.
func TestQuietOpenIDRefresh(t *testing.T) {
	ctx := context.Background()
	// The handler as the provider composes it, so a change of its type
	// fails the test.
	h := quietTokenHandler{compose.OpenIDConnectRefreshFactory(&fosite.Config{}, nil, &openid.DefaultStrategy{}).(fosite.TokenEndpointHandler)}
	client := &fosite.DefaultClient{ID: "app", GrantTypes: fosite.Arguments{"refresh_token"}}
	tests := []struct {
		name     string
		granted  fosite.Arguments
		declined bool
	}{
		{name: "no openid", granted: fosite.Arguments{"profile"}, declined: true},
		{name: "no scopes", declined: true},
		{name: "openid", granted: fosite.Arguments{"openid", "profile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No openid.Session: a handler that is reached fails on it.
			req := fosite.NewAccessRequest(nil)
			req.GrantTypes = fosite.Arguments{"refresh_token"}
			req.GrantedScope = tt.granted
			req.Client = client
			herr := h.HandleTokenEndpointRequest(ctx, req)
			perr := h.PopulateTokenEndpointResponse(ctx, req, fosite.NewAccessResponse())
			for _, err := range []error{herr, perr} {
				if tt.declined && err != fosite.ErrUnknownRequest { // the plain value, not a stack-carrying wrapper
					t.Errorf("declined: %v, want the plain fosite.ErrUnknownRequest", err)
				}
				if !tt.declined && (err == nil || errors.Is(err, fosite.ErrUnknownRequest)) {
					t.Errorf("reached: %v, want the handler's session error", err)
				}
			}
		})
	}
}
