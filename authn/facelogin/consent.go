package facelogin

import (
	"context"
	"errors"
	"strings"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/internal/store"
)

// The face-recognition measures (人脸识别技术应用安全管理办法, CAC and MPS,
// in force 2025-06-01): face data is processed only with the person's
// separate consent, never for a child under 14 without a guardian's
// consent, and face recognition must not be the only way in.
//
// What is built: the login page shows a consent screen (purpose, what is
// kept, for how long) before the camera opens, and sends the answer with
// Begin (JSON "face_consent": true) and Finish (multipart field
// "face_consent" = "yes"); without it nothing is processed and the method
// answers 403 face_consent_required (the page then offers a passkey or a
// desk check). An ID number showing an age under 14 is refused with 403
// guardian_required before any processing: there is no guardian flow yet,
// so such a child signs in by a desk check (CIBA) or the guardian acts for
// them at a service desk. Each consent is recorded in the audit log
// (face.consent, with the time) when Config.Audit is set.

// FieldFaceConsent is the multipart field and JSON key of the consent.
const FieldFaceConsent = "face_consent"

// MinFaceAge is the youngest age whose face is processed without a
// guardian flow.
const MinFaceAge = 14

// Auditor records the citizen's face consent (*audit.Recorder satisfies it).
type Auditor interface {
	RecordOrLog(ctx context.Context, e *store.AuditEvent)
}

var (
	errNoConsent = errors.New("no face consent")
	errUnder14   = errors.New("under 14: no face processing without a guardian flow")
)

// permitted refuses face processing without consent or for a child.
// claimed is the ID number the citizen typed or the client hinted ("" on
// a step-up, where a previous factor already identified the citizen).
func (f *Login) permitted(ctx context.Context, a *authn.Attempt, claimed string, consent bool, sub string) error {
	if claimed = strings.TrimSpace(claimed); claimed == "" {
		claimed = strings.TrimSpace(a.LoginHint)
	}
	if age, ok := idnumber.AgeAt(claimed, f.cfg.Clock()); ok && age < MinFaceAge {
		return authn.Refuse(authn.ErrNotPermitted, "guardian_required", 0, errUnder14)
	}
	if !consent {
		return authn.Refuse(authn.ErrNotPermitted, "face_consent_required", 0, errNoConsent)
	}
	if f.cfg.Audit != nil && sub != "" && !strings.HasPrefix(sub, "unknown:") {
		f.cfg.Audit.RecordOrLog(ctx, &store.AuditEvent{At: f.cfg.Clock().UTC(), Actor: "citizen:" + sub, Action: "face.consent",
			Subject: sub, Object: a.ClientID, Outcome: "ok", Detail: map[string]string{"purpose": "sign-in", "attempt": a.ID}})
	}
	return nil
}
