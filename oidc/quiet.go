package oidc

import (
	"context"

	"github.com/ory/fosite"
)

// quietTokenHandler wraps a fosite token endpoint handler so that a request
// it cannot handle is turned away with the plain fosite.ErrUnknownRequest.
// fosite asks every handler about every token request, and each one that
// declines wraps ErrUnknownRequest with a captured stack trace
// (errorsx.WithStack): with nine handlers that was a quarter of the CPU of a
// client_credentials request. The handlers' own first step is the same
// CanHandleTokenEndpointRequest check, and fosite treats both errors alike
// (errors.Is), so what a request gets is unchanged.
type quietTokenHandler struct{ fosite.TokenEndpointHandler }

func (h quietTokenHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

func (h quietTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

// quietTokenHandlers wraps every handler of hs in place.
func quietTokenHandlers(hs fosite.TokenEndpointHandlers) {
	for i, h := range hs {
		if _, ok := h.(quietTokenHandler); !ok {
			hs[i] = quietTokenHandler{h}
		}
	}
}
