package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/internal/store"
)

// Decision is the outcome of a 1:1 verification. Scores and thresholds are
// for trusted callers only; the HTTP API strips them for others.
type Decision struct {
	Match          bool
	CitizenID      string
	OperatingPoint string  // FAR name, e.g. "1e-4"
	Threshold      float32 // cosine threshold at OperatingPoint
	Score          float32 // best of RegisterScore and the live scores
	RegisterScore  float32
	// LiveTemplates is how many enrolled live templates were compared.
	LiveTemplates int
}

// ResolveIDNumber returns the internal citizen id of an ID number. Errors:
// ErrInvalidIDNumber, ErrUnknownIDNumber, ErrDisabled. Callers facing the
// public must answer the three alike (no enumeration oracle); any other
// error is a fault of the store (authn/facelogin answers it 503).
func (s *Service) ResolveIDNumber(ctx context.Context, idNumber string) (string, error) {
	c, err := s.citizenByIDNumber(ctx, idNumber)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

func (s *Service) citizenByIDNumber(ctx context.Context, idNumber string) (*store.Citizen, error) {
	idNumber = idnumber.Normalize(idNumber)
	if err := s.cfg.IDNumbers.Validate(idNumber); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDNumber, err)
	}
	c, err := s.cfg.Store.Citizens().GetByIDNumber(ctx, idNumber)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownIDNumber
	}
	if err != nil {
		return nil, fmt.Errorf("identity: look up citizen: %w", err)
	}
	if c.Disabled {
		return nil, ErrDisabled
	}
	return c, nil
}

// MatchReference compares an embedding (of the current model) with the
// citizen's register template and enrolled live templates and reports
// whether the best score reaches the configured operating point. Errors:
// ErrUnknownIDNumber (no such citizen), ErrDisabled, ErrNoReference,
// ErrModelMismatch.
func (s *Service) MatchReference(ctx context.Context, citizenID string, embedding []float32) (match bool, score float32, err error) {
	d, err := s.decide(ctx, citizenID, embedding)
	if err != nil {
		return false, 0, err
	}
	return d.Match, d.Score, nil
}

func (s *Service) decide(ctx context.Context, citizenID string, v []float32) (*Decision, error) {
	c, err := s.cfg.Store.Citizens().Get(ctx, citizenID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownIDNumber
	}
	if err != nil {
		return nil, fmt.Errorf("identity: get citizen: %w", err)
	}
	if c.Disabled {
		return nil, ErrDisabled
	}
	ts, err := s.cfg.Store.Templates().ListByCitizen(ctx, citizenID)
	if err != nil {
		return nil, fmt.Errorf("identity: templates: %w", err)
	}
	d := &Decision{CitizenID: citizenID, OperatingPoint: s.cfg.OperatingPoint, Threshold: s.threshold}
	hasRef := false
	best, bestReg := float32(-2), float32(-2) // below any cosine
	for _, t := range ts {
		if t.ModelVersion != s.model {
			continue
		}
		if len(t.Vector) != len(v) {
			return nil, fmt.Errorf("%w: template of %d, probe of %d values", ErrModelMismatch, len(t.Vector), len(v))
		}
		sc := cosine(t.Vector, v)
		best = max(best, sc)
		switch t.Kind {
		case store.TemplateRegister:
			hasRef = true
			bestReg = max(bestReg, sc)
		case store.TemplateLive:
			d.LiveTemplates++
		}
	}
	if !hasRef {
		return nil, ErrNoReference
	}
	d.Score, d.RegisterScore = best, bestReg
	d.Match = d.Score >= s.threshold
	return d, nil
}

// Verify embeds the probe photo and compares it with the citizen holding
// idNumber. The probe is embedded before the ID number is looked up, so an
// unknown ID number costs the same time as a known one. It returns the
// decision (Match false is not an error) and the probe, which Enroll takes.
// Errors: the probe quality errors, ErrInvalidIDNumber, ErrUnknownIDNumber,
// ErrDisabled, ErrNoReference.
func (s *Service) Verify(ctx context.Context, idNumber string, image []byte) (*Decision, *EnrollProbe, error) {
	probe, err := s.cfg.Embedder.Embed(ctx, image)
	if err != nil {
		return nil, nil, err
	}
	if probe.ModelVersion != s.model {
		return nil, nil, fmt.Errorf("%w: embedder returned %q, want %q", ErrModelMismatch, probe.ModelVersion, s.model)
	}
	c, err := s.citizenByIDNumber(ctx, idNumber)
	if err != nil {
		return nil, nil, err
	}
	d, err := s.decide(ctx, c.ID, probe.Embedding)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(image)
	return d, &EnrollProbe{CitizenID: c.ID, Embedding: probe.Embedding, PhotoHash: sum[:]}, nil
}

// EnrollProbe is a verified face ready to become a live template.
type EnrollProbe struct {
	CitizenID string
	Embedding []float32 // current model, L2-normalised
	PhotoHash []byte    // SHA-256 of the source image or frame (may be nil)
}

// Enroll stores p as a live template of its citizen after checking, again,
// that it matches the citizen at the operating point (ErrNoMatch) and that
// it matches no other citizen at the duplicate-check point
// (ErrDuplicateIdentity). A citizen keeps at most MaxLiveTemplates live
// templates: the oldest is deleted first. actor is recorded in the audit
// log. It returns the new template's id.
func (s *Service) Enroll(ctx context.Context, actor string, p *EnrollProbe) (string, error) {
	d, err := s.decide(ctx, p.CitizenID, p.Embedding)
	if err != nil {
		return "", err
	}
	if !d.Match {
		return "", ErrNoMatch
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	other, score, err := s.duplicateOf(p.CitizenID, p.Embedding)
	if err != nil {
		return "", fmt.Errorf("identity: duplicate check: %w", err)
	}
	if other != "" {
		s.audit(ctx, &store.AuditEvent{
			Actor: actor, Action: "face.enroll", Subject: p.CitizenID, Outcome: "duplicate_identity",
			Detail: map[string]string{"other": other, "score": strconv.FormatFloat(float64(score), 'f', 3, 32)},
		})
		return "", ErrDuplicateIdentity
	}
	ts, err := s.cfg.Store.Templates().ListByCitizen(ctx, p.CitizenID)
	if err != nil {
		return "", fmt.Errorf("identity: templates: %w", err)
	}
	var live []*store.Template
	for _, t := range ts {
		if t.Kind == store.TemplateLive {
			live = append(live, t)
		}
	}
	// Oldest first (created_at, then id, as the store lists them).
	slices.SortStableFunc(live, func(a, b *store.Template) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for len(live) >= s.cfg.MaxLiveTemplates {
		old := live[0]
		live = live[1:]
		if err := s.cfg.Store.Templates().Delete(ctx, old.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("identity: replace oldest live template: %w", err)
		}
		s.cfg.Index.Remove(indexKey(old.CitizenID, old.ID))
		s.audit(ctx, &store.AuditEvent{
			Actor: actor, Action: "face.enroll.replace", Subject: p.CitizenID, Object: old.ID, Outcome: "ok",
		})
	}
	id, err := s.newTemplateID()
	if err != nil {
		return "", err
	}
	t := &store.Template{
		ID: id, CitizenID: p.CitizenID, Kind: store.TemplateLive, ModelVersion: s.model,
		Vector: p.Embedding, PhotoHash: p.PhotoHash, CreatedAt: s.cfg.Now(),
	}
	if err := s.cfg.Store.Templates().Create(ctx, t); err != nil {
		return "", fmt.Errorf("identity: store live template: %w", err)
	}
	if err := s.cfg.Index.Add(indexKey(t.CitizenID, t.ID), t.Vector); err != nil {
		return "", fmt.Errorf("identity: index live template: %w", err)
	}
	s.audit(ctx, &store.AuditEvent{
		Actor: actor, Action: "face.enroll", Subject: p.CitizenID, Object: t.ID, Outcome: "ok",
		Detail: map[string]string{"model_version": s.model},
	})
	return t.ID, nil
}

// LoadIndex adds every stored template of the current model version to the
// index, paging through store.TemplateStore.ListAll. Templates of other
// model versions are skipped and counted. Call it once at start.
func (s *Service) LoadIndex(ctx context.Context) (loaded, skipped int, err error) {
	const page = 1000
	after := ""
	for {
		ts, err := s.cfg.Store.Templates().ListAll(ctx, after, page)
		if err != nil {
			return loaded, skipped, fmt.Errorf("identity: load index: %w", err)
		}
		for _, t := range ts {
			if t.ModelVersion != s.model {
				skipped++
				continue
			}
			if err := s.cfg.Index.Add(indexKey(t.CitizenID, t.ID), t.Vector); err != nil {
				return loaded, skipped, fmt.Errorf("identity: load index: template %s: %w", t.ID, err)
			}
			loaded++
		}
		if len(ts) < page {
			break
		}
		after = ts[len(ts)-1].ID
	}
	s.cfg.Logger.InfoContext(ctx, "face index loaded", "templates", loaded, "other_model", skipped)
	return loaded, skipped, nil
}
