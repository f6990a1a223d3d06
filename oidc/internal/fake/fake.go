// Package fake holds small in-memory implementations of the parts of
// store.Store and ephemeral.Store that the OIDC provider uses, for unit tests
// of oidc/ until (and alongside) the real backends. Parts the provider never
// touches (templates, certificates, passkeys) are nil.
package fake

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	auditlog "github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/ephemeral"
	"github.com/trustid/trustid/internal/store"
)

var (
	_ store.Store        = (*Store)(nil)
	_ store.ClientStore  = (*clients)(nil)
	_ store.OAuthStore   = (*oauth)(nil)
	_ store.ConsentStore = (*consents)(nil)
	_ store.KeyStore     = (*keys)(nil)
	_ store.CitizenStore = (*citizens)(nil)
	_ store.AuditStore   = (*audit)(nil)
	_ ephemeral.Store    = (*Ephemeral)(nil)
)

// Store is an in-memory store.Store for the provider's tests.
type Store struct {
	mu       sync.Mutex
	clients  map[string]store.Client
	oauth    map[string]store.OAuthRecord
	consents map[string]store.Consent
	keys     map[string]store.SigningKey
	citizens map[string]store.Citizen
	events   []*store.AuditEvent
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		clients:  map[string]store.Client{},
		oauth:    map[string]store.OAuthRecord{},
		consents: map[string]store.Consent{},
		keys:     map[string]store.SigningKey{},
		citizens: map[string]store.Citizen{},
	}
}

func (s *Store) Citizens() store.CitizenStore         { return (*citizens)(s) }
func (s *Store) Templates() store.TemplateStore       { return nil }
func (s *Store) Passkeys() store.PasskeyStore         { return nil }
func (s *Store) Clients() store.ClientStore           { return (*clients)(s) }
func (s *Store) OAuth() store.OAuthStore              { return (*oauth)(s) }
func (s *Store) Consents() store.ConsentStore         { return (*consents)(s) }
func (s *Store) Certificates() store.CertificateStore { return nil }
func (s *Store) Audit() store.AuditStore              { return (*audit)(s) }
func (s *Store) Keys() store.KeyStore                 { return (*keys)(s) }
func (s *Store) Ping(context.Context) error           { return nil }
func (s *Store) Migrate(context.Context) error        { return nil }
func (s *Store) Close() error                         { return nil }

func nf(what, key string) error { return fmt.Errorf("fake: %s %q: %w", what, key, store.ErrNotFound) }

type clients Store

func (s *clients) Create(_ context.Context, c *store.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return store.ErrAlreadyExists
	}
	s.clients[c.ID] = cloneClient(*c)
	return nil
}

func cloneClient(c store.Client) store.Client {
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	c.PostLogoutURIs = append([]string(nil), c.PostLogoutURIs...)
	c.GrantTypes = append([]string(nil), c.GrantTypes...)
	c.ResponseTypes = append([]string(nil), c.ResponseTypes...)
	c.Scopes = append([]string(nil), c.Scopes...)
	c.Claims = append([]string(nil), c.Claims...)
	c.SecretHash = append([]byte(nil), c.SecretHash...)
	c.SecretHashOld = append([]byte(nil), c.SecretHashOld...)
	return c
}

func (s *clients) Get(_ context.Context, id string) (*store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, nf("client", id)
	}
	c = cloneClient(c)
	return &c, nil
}

func (s *clients) Update(_ context.Context, id string, fn func(*store.Client) error) (*store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, nf("client", id)
	}
	c = cloneClient(c)
	if err := fn(&c); err != nil {
		return nil, fmt.Errorf("fake: update client: %w", err)
	}
	s.clients[id] = cloneClient(c)
	return &c, nil
}

func (s *clients) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return nf("client", id)
	}
	delete(s.clients, id)
	return nil
}

func (s *clients) List(context.Context) ([]*store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Client
	for _, c := range s.clients {
		c := cloneClient(c)
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

type oauth Store

func okey(k store.OAuthKind, sig string) string { return string(k) + "\x00" + sig }

func (s *oauth) Create(_ context.Context, r *store.OAuthRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := okey(r.Kind, r.Signature)
	if _, ok := s.oauth[k]; ok {
		return store.ErrAlreadyExists
	}
	c := *r
	c.Data = append([]byte(nil), r.Data...)
	s.oauth[k] = c
	return nil
}

func (s *oauth) Get(_ context.Context, kind store.OAuthKind, sig string) (*store.OAuthRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.oauth[okey(kind, sig)]
	if !ok {
		return nil, nf(string(kind), sig)
	}
	return &r, nil
}

func (s *oauth) Delete(_ context.Context, kind store.OAuthKind, sig string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.oauth[okey(kind, sig)]; !ok {
		return nf(string(kind), sig)
	}
	delete(s.oauth, okey(kind, sig))
	return nil
}

func (s *oauth) Deactivate(ctx context.Context, kind store.OAuthKind, sig string) error {
	_, err := s.Update(ctx, kind, sig, func(r *store.OAuthRecord) error { r.Active = false; return nil })
	return err
}

func (s *oauth) Consume(_ context.Context, kind store.OAuthKind, sig string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.oauth[okey(kind, sig)]
	if !ok {
		return nf(string(kind), sig)
	}
	if !r.Active {
		return fmt.Errorf("fake: consume oauth: %w", store.ErrConflict)
	}
	r.Active, r.Data = false, nil // as store.OAuthStore.Consume
	s.oauth[okey(kind, sig)] = r
	return nil
}

// Rotate checks everything before changing anything, under one lock.
func (s *oauth) Rotate(_ context.Context, kind store.OAuthKind, sig string, revoke store.OAuthKind, requestID string, recs ...*store.OAuthRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if revoke == kind {
		return fmt.Errorf("fake: rotate oauth: revoke must differ from kind")
	}
	r, ok := s.oauth[okey(kind, sig)]
	if !ok {
		return nf(string(kind), sig)
	}
	if !r.Active {
		return fmt.Errorf("fake: rotate oauth: %w", store.ErrConflict)
	}
	seen := map[string]bool{}
	for _, n := range recs {
		k := okey(n.Kind, n.Signature)
		if _, ok := s.oauth[k]; ok || seen[k] {
			return fmt.Errorf("fake: rotate oauth: %w", store.ErrAlreadyExists)
		}
		seen[k] = true
	}
	r.Active, r.Data = false, nil // as store.OAuthStore.Consume
	s.oauth[okey(kind, sig)] = r
	if revoke != "" {
		for k, o := range s.oauth {
			if o.Kind == revoke && o.RequestID == requestID {
				delete(s.oauth, k)
			}
		}
	}
	for _, n := range recs {
		c := *n
		c.Data = append([]byte(nil), n.Data...)
		s.oauth[okey(n.Kind, n.Signature)] = c
	}
	return nil
}

func (s *oauth) Update(_ context.Context, kind store.OAuthKind, sig string, fn func(*store.OAuthRecord) error) (*store.OAuthRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.oauth[okey(kind, sig)]
	if !ok {
		return nil, nf(string(kind), sig)
	}
	if err := fn(&r); err != nil {
		return nil, fmt.Errorf("fake: update oauth: %w", err)
	}
	s.oauth[okey(kind, sig)] = r
	return &r, nil
}

func (s *oauth) DeleteByRequestID(_ context.Context, kind store.OAuthKind, id string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.oauth {
		if r.Kind == kind && r.RequestID == id {
			delete(s.oauth, k)
			n++
		}
	}
	return n, nil
}

func (s *oauth) ListByRequestID(_ context.Context, kind store.OAuthKind, id string, limit int) ([]*store.OAuthRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.OAuthRecord
	for _, r := range s.oauth {
		if r.Kind == kind && r.RequestID == id {
			c := r
			c.Data = slices.Clone(r.Data)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *store.OAuthRecord) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.Signature, a.Signature)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *oauth) DeactivateByRequestID(_ context.Context, kind store.OAuthKind, id string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.oauth {
		if r.Kind == kind && r.RequestID == id {
			r.Active = false
			s.oauth[k] = r
			n++
		}
	}
	return n, nil
}

func (s *oauth) DeleteExpired(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, r := range s.oauth {
		if r.ExpiresAt.Before(now) {
			delete(s.oauth, k)
			n++
		}
	}
	return n, nil
}

// Len reports how many OAuth records of kind are held (for tests).
func (s *Store) Len(kind store.OAuthKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.oauth {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

type consents Store

func (s *consents) Put(_ context.Context, c *store.Consent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consents[c.CitizenID+"\x00"+c.ClientID] = *c
	return nil
}

func (s *consents) Get(_ context.Context, citizenID, clientID string) (*store.Consent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.consents[citizenID+"\x00"+clientID]
	if !ok {
		return nil, nf("consent", clientID)
	}
	return &c, nil
}

func (s *consents) ListByCitizen(_ context.Context, citizenID string) ([]*store.Consent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Consent
	for _, c := range s.consents {
		if c.CitizenID == citizenID {
			c := c
			out = append(out, &c)
		}
	}
	return out, nil
}

func (s *consents) Delete(_ context.Context, citizenID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.consents, citizenID+"\x00"+clientID)
	return nil
}

type keys Store

func (s *keys) Create(_ context.Context, k *store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return store.ErrAlreadyExists
	}
	s.keys[k.ID] = *k
	return nil
}

func (s *keys) Get(_ context.Context, id string) (*store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, nf("key", id)
	}
	return &k, nil
}

func (s *keys) List(_ context.Context, use string) ([]*store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.SigningKey
	for _, k := range s.keys {
		if k.Use == use {
			k := k
			out = append(out, &k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (s *keys) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[id]; !ok {
		return nf("key", id)
	}
	delete(s.keys, id)
	return nil
}

type citizens Store

func (s *citizens) Create(_ context.Context, c *store.Citizen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.citizens[c.ID]; ok {
		return store.ErrAlreadyExists
	}
	s.citizens[c.ID] = *c
	return nil
}

func (s *citizens) Get(_ context.Context, id string) (*store.Citizen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.citizens[id]
	if !ok {
		return nil, nf("citizen", id)
	}
	return &c, nil
}

func (s *citizens) GetByIDNumber(_ context.Context, n string) (*store.Citizen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.citizens {
		if c.IDNumber == n {
			c := c
			return &c, nil
		}
	}
	return nil, nf("citizen", "by id number")
}

func (s *citizens) Update(_ context.Context, id string, fn func(*store.Citizen) error) (*store.Citizen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.citizens[id]
	if !ok {
		return nil, nf("citizen", id)
	}
	if err := fn(&c); err != nil {
		return nil, err
	}
	s.citizens[id] = c
	return &c, nil
}

func (s *citizens) List(_ context.Context, after string, limit int) ([]*store.Citizen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Citizen
	for _, c := range s.citizens {
		if c.ID > after {
			c := c
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

type audit Store

func (s *audit) Append(_ context.Context, e *store.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev []byte
	if n := len(s.events); n > 0 {
		prev = s.events[n-1].Hash
	}
	e.Seq = int64(len(s.events) + 1)
	e.PrevHash = prev
	e.Hash = auditlog.Chain(prev, e)
	c := *e
	s.events = append(s.events, &c)
	return nil
}

func (s *audit) List(_ context.Context, after int64, limit int) ([]*store.AuditEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.AuditEvent
	for _, e := range s.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *audit) ListBySubject(_ context.Context, subject, prefix string, limit int) ([]*store.AuditEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.AuditEvent
	for i := len(s.events) - 1; i >= 0 && len(out) < limit; i-- {
		e := s.events[i]
		if e.Subject == subject && len(e.Action) >= len(prefix) && e.Action[:len(prefix)] == prefix {
			out = append(out, e)
		}
	}
	return out, nil
}

// Ephemeral is an in-memory ephemeral.Store with an injectable clock.
type Ephemeral struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]entry
}

type entry struct {
	v   []byte
	exp time.Time
}

// NewEphemeral returns an empty Ephemeral; now may be nil for time.Now.
func NewEphemeral(now func() time.Time) *Ephemeral {
	if now == nil {
		now = time.Now
	}
	return &Ephemeral{now: now, m: map[string]entry{}}
}

func (e *Ephemeral) get(key string) (entry, bool) {
	v, ok := e.m[key]
	if ok && !e.now().Before(v.exp) {
		delete(e.m, key)
		return entry{}, false
	}
	return v, ok
}

func (e *Ephemeral) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("fake: ttl %v", ttl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = entry{append([]byte(nil), value...), e.now().Add(ttl)}
	return nil
}

func (e *Ephemeral) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("fake: ttl %v", ttl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.get(key); ok {
		return false, nil
	}
	e.m[key] = entry{append([]byte(nil), value...), e.now().Add(ttl)}
	return true, nil
}

func (e *Ephemeral) SetUnless(_ context.Context, guard string, guarded []ephemeral.Write, plain ...ephemeral.Write) (bool, error) {
	for _, ws := range [][]ephemeral.Write{guarded, plain} {
		for _, w := range ws {
			if w.TTL <= 0 {
				return false, fmt.Errorf("fake: ttl %v", w.TTL)
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, w := range plain {
		e.m[w.Key] = entry{append([]byte(nil), w.Value...), now.Add(w.TTL)}
	}
	if _, ok := e.get(guard); ok {
		return false, nil
	}
	for _, w := range guarded {
		e.m[w.Key] = entry{append([]byte(nil), w.Value...), now.Add(w.TTL)}
	}
	return true, nil
}

func (e *Ephemeral) Get(_ context.Context, key string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.get(key)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	return append([]byte(nil), v.v...), nil
}

func (e *Ephemeral) Take(_ context.Context, key string) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.get(key)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	delete(e.m, key)
	return v.v, nil
}

func (e *Ephemeral) Delete(_ context.Context, key string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
	return nil
}

func (e *Ephemeral) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.get(key)
	var n int64
	if ok {
		fmt.Sscan(string(v.v), &n)
	} else {
		v.exp = e.now().Add(ttl)
	}
	n += delta
	v.v = []byte(fmt.Sprint(n))
	e.m[key] = v
	return n, nil
}

func (e *Ephemeral) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	n, err := e.Incr(ctx, key, 1, window)
	if err != nil {
		return false, 0, err
	}
	if n > int64(limit) {
		_, _ = e.Incr(ctx, key, -1, window)
		return false, window, nil
	}
	return true, 0, nil
}

func (e *Ephemeral) Ping(context.Context) error { return nil }
func (e *Ephemeral) Close() error               { return nil }
