package certs

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

// memStore is a small in-memory fake of the store parts certs uses.
type memStore struct {
	mu        sync.Mutex
	certs     map[string]*store.Certificate
	nextIndex int64
	keys      map[string]*store.SigningKey
	audit     []*store.AuditEvent
	citizens  map[string]*store.Citizen
	templates map[string][]*store.Template
}

func newMemStore() *memStore {
	return &memStore{
		certs:     map[string]*store.Certificate{},
		keys:      map[string]*store.SigningKey{},
		citizens:  map[string]*store.Citizen{},
		templates: map[string][]*store.Template{},
	}
}

var (
	_ store.CertificateStore = (*memCerts)(nil)
	_ store.KeyStore         = (*memKeys)(nil)
	_ store.AuditStore       = (*memAudit)(nil)
	_ CitizenGetter          = (*memStore)(nil)
	_ TemplateLister         = (*memStore)(nil)
)

type memCerts struct{ *memStore }
type memKeys struct{ *memStore }
type memAudit struct{ *memStore }

func (m *memStore) Get(ctx context.Context, id string) (*store.Citizen, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.citizens[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

func (m *memStore) ListByCitizen(ctx context.Context, id string) ([]*store.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*store.Template(nil), m.templates[id]...), nil
}

func (m memCerts) Issue(ctx context.Context, c *store.Certificate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.certs[c.Serial]; ok {
		return store.ErrAlreadyExists
	}
	for _, o := range m.certs {
		if o.CitizenID == c.CitizenID && o.Status == store.CertActive {
			o.Status, o.RevokedAt, o.RevokeReason = store.CertRevoked, c.IssuedAt, "superseded"
		}
	}
	c.StatusIndex = m.nextIndex
	m.nextIndex++
	cp := *c
	m.certs[c.Serial] = &cp
	return nil
}

func (m memCerts) Get(ctx context.Context, serial string) (*store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[serial]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

func (m memCerts) Active(ctx context.Context, citizenID string) (*store.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.certs {
		if c.CitizenID == citizenID && c.Status == store.CertActive {
			cp := *c
			return &cp, nil
		}
	}
	return nil, store.ErrNotFound
}

func (m memCerts) Revoke(ctx context.Context, serial, reason string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[serial]
	if !ok {
		return store.ErrNotFound
	}
	if c.Status != store.CertRevoked {
		c.Status, c.RevokedAt, c.RevokeReason = store.CertRevoked, at, reason
	}
	return nil
}

func (m memCerts) Revoked(ctx context.Context) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, c := range m.certs {
		if c.Status == store.CertRevoked {
			out = append(out, c.StatusIndex)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (m memKeys) Create(ctx context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return store.ErrAlreadyExists
	}
	cp := *k
	m.keys[k.ID] = &cp
	return nil
}

func (m memKeys) Get(ctx context.Context, id string) (*store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *k
	return &cp, nil
}

func (m memKeys) List(ctx context.Context, use string) ([]*store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.SigningKey
	for _, k := range m.keys {
		if k.Use == use {
			cp := *k
			out = append(out, &cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

func (m memKeys) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; !ok {
		return store.ErrNotFound
	}
	delete(m.keys, id)
	return nil
}

func (m memAudit) Append(ctx context.Context, e *store.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var prev []byte
	if n := len(m.audit); n > 0 {
		prev = m.audit[n-1].Hash
	}
	e.Seq = int64(len(m.audit) + 1)
	e.PrevHash = prev
	e.Hash = audit.Chain(prev, e)
	cp := *e
	m.audit = append(m.audit, &cp)
	return nil
}

func (m memAudit) List(ctx context.Context, after int64, limit int) ([]*store.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.AuditEvent
	for _, e := range m.audit {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m memAudit) ListBySubject(ctx context.Context, subject, prefix string, limit int) ([]*store.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.AuditEvent
	for i := len(m.audit) - 1; i >= 0 && len(out) < limit; i-- {
		if e := m.audit[i]; e.Subject == subject && strings.HasPrefix(e.Action, prefix) {
			out = append(out, e)
		}
	}
	return out, nil
}

// memEphemeral is a fake ephemeral.Store (only what certs uses is real).
type memEphemeral struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]memEntry
}

type memEntry struct {
	v   []byte
	exp time.Time
}

var _ ephemeral.Store = (*memEphemeral)(nil)

func newMemEphemeral(now func() time.Time) *memEphemeral {
	return &memEphemeral{now: now, m: map[string]memEntry{}}
}

func (e *memEphemeral) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("ttl %v", ttl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[k] = memEntry{bytes.Clone(v), e.now().Add(ttl)}
	return nil
}

func (e *memEphemeral) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("ttl %v", ttl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.m[k]; ok && e.now().Before(old.exp) {
		return false, nil
	}
	e.m[k] = memEntry{bytes.Clone(v), e.now().Add(ttl)}
	return true, nil
}

func (e *memEphemeral) SetUnless(ctx context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range append(append([]ephemeral.Write(nil), guarded...), plain...) {
		if w.TTL <= 0 {
			return false, fmt.Errorf("ttl %v", w.TTL)
		}
	}
	for _, w := range plain {
		e.m[w.Key] = memEntry{bytes.Clone(w.Value), e.now().Add(w.TTL)}
	}
	if old, ok := e.m[guard]; ok && e.now().Before(old.exp) {
		return false, nil
	}
	for _, w := range guarded {
		e.m[w.Key] = memEntry{bytes.Clone(w.Value), e.now().Add(w.TTL)}
	}
	return true, nil
}

func (e *memEphemeral) Get(ctx context.Context, k string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.m[k]; ok && e.now().Before(old.exp) {
		return bytes.Clone(old.v), nil
	}
	return nil, ephemeral.ErrNotFound
}

func (e *memEphemeral) Take(ctx context.Context, k string) ([]byte, error) {
	v, err := e.Get(ctx, k)
	if err == nil {
		e.Delete(ctx, k)
	}
	return v, err
}

func (e *memEphemeral) Delete(ctx context.Context, k string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, k)
	return nil
}

func (e *memEphemeral) Incr(ctx context.Context, k string, d int64, ttl time.Duration) (int64, error) {
	return 0, fmt.Errorf("not used by certs")
}

func (e *memEphemeral) Allow(ctx context.Context, k string, limit int, w time.Duration) (bool, time.Duration, error) {
	return false, 0, fmt.Errorf("not used by certs")
}

func (e *memEphemeral) Ping(ctx context.Context) error { return nil }
func (e *memEphemeral) Close() error                   { return nil }
