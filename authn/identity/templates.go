package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustid/trustid/internal/store"
)

// Citizens' control of their face data (the face-recognition measures:
// shortest retention, the person can see and delete it). A citizen sees
// every template held for them; they may delete the templates enrolled
// after a verification (live), not the register photo's template, which
// belongs to the population register and is what face sign-in and the
// certificate compare with. Live templates also expire after the
// configured retention (PurgeExpired).

// ErrNotYours refuses a template of another citizen; ErrRegisterTemplate
// the deletion of the register photo's template.
var (
	ErrNotYours         = errors.New("identity: template of another citizen")
	ErrRegisterTemplate = errors.New("identity: the register template is kept with the register")
)

// Templates lists the citizen's face templates (metadata and vectors; the
// caller shows only metadata).
func (s *Service) Templates(ctx context.Context, citizenID string) ([]*store.Template, error) {
	ts, err := s.cfg.Store.Templates().ListByCitizen(ctx, citizenID)
	if err != nil {
		return nil, fmt.Errorf("identity: templates: %w", err)
	}
	return ts, nil
}

// DeleteTemplate deletes one of the citizen's live templates from the
// store and this node's index (other nodes drop it from theirs at restart;
// only the duplicate check reads the index, see PollOnce), audited.
func (s *Service) DeleteTemplate(ctx context.Context, actor, citizenID, templateID string) error {
	t, err := s.cfg.Store.Templates().Get(ctx, templateID)
	if err != nil {
		return fmt.Errorf("identity: template: %w", err)
	}
	switch {
	case t.CitizenID != citizenID:
		return ErrNotYours
	case t.Kind == store.TemplateRegister:
		return ErrRegisterTemplate
	}
	if err := s.remove(ctx, t); err != nil {
		return err
	}
	s.audit(ctx, &store.AuditEvent{Actor: actor, Action: "face.template.delete", Subject: citizenID, Object: templateID, Outcome: "ok"})
	return nil
}

func (s *Service) remove(ctx context.Context, t *store.Template) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.cfg.Store.Templates().Delete(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("identity: delete template: %w", err)
	}
	s.cfg.Index.Remove(indexKey(t.CitizenID, t.ID))
	return nil
}

// PurgeExpired deletes the live templates created more than retention ago
// and returns how many; retention <= 0 keeps them. It pages through every
// template (run it every few hours, not per request).
func (s *Service) PurgeExpired(ctx context.Context, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, nil
	}
	cut := s.cfg.Now().Add(-retention)
	n, after := 0, ""
	for {
		page, err := s.cfg.Store.Templates().ListAll(ctx, after, 500)
		if err != nil {
			return n, fmt.Errorf("identity: purge: %w", err)
		}
		for _, t := range page {
			after = t.ID
			if t.Kind != store.TemplateLive || !t.CreatedAt.Before(cut) {
				continue
			}
			if err := s.remove(ctx, t); err != nil {
				return n, err
			}
			s.audit(ctx, &store.AuditEvent{Actor: "system", Action: "face.template.expire", Subject: t.CitizenID, Object: t.ID, Outcome: "ok",
				Detail: map[string]string{"retention": retention.String()}})
			n++
		}
		if len(page) < 500 {
			return n, nil
		}
	}
}
