package oidc

import (
	"context"
	"encoding/json"
	"time"
)

// kvGetter and kvSetter are the parts of the ephemeral store that
// getJSON and putJSON use.
type (
	kvGetter interface {
		Get(ctx context.Context, key string) ([]byte, error)
	}
	kvSetter interface {
		Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	}
)

// putJSON stores v as JSON under key for ttl.
func putJSON(ctx context.Context, s kvSetter, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Set(ctx, key, b, ttl)
}

// getJSON reads the JSON under key into v.
func getJSON(ctx context.Context, s kvGetter, key string, v any) error {
	b, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
