package facelogin

import (
	"errors"
	"slices"
	"strings"

	"github.com/trustid/trustid/authn"
	"github.com/trustid/trustid/liveness/challenge"
)

// kind chooses the challenge for a page in language lang (BCP 47; empty
// for a request without a page, which gets the first digit language) and
// the relying party's minimum acr. Digits where a recogniser serves the
// language (they are the stronger kind), actions otherwise, and a refusal
// when neither can be checked or the relying party requires the digits
// that nothing can check in this language: never ask for what no checker
// serves.
func (f *Login) kind(lang, minACR string) (challenge.Kind, error) {
	digits := false
	if tag := primaryTag(lang); tag == "" {
		digits = len(f.cfg.DigitLanguages) > 0
	} else {
		digits = slices.Contains(f.cfg.DigitLanguages, tag)
	}
	needDigits := authn.ACRRank(minACR) >= authn.ACRRank(authn.ACRFaceLiveness)
	switch {
	case digits:
		return challenge.KindDigits, nil
	case needDigits:
		return "", authn.Refuse(authn.ErrMalformed, "digits_unavailable", 0,
			errors.New("the relying party requires spoken digits and no recogniser serves the page's language"))
	case f.cfg.Actions:
		return challenge.KindActions, nil
	}
	return "", authn.Refuse(authn.ErrMalformed, "no_challenge_for_language", 0,
		errors.New("no challenge kind can be checked for the page's language"))
}

// primaryTag is the lower-case primary language subtag of a BCP 47 tag.
func primaryTag(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return lang
}

// methodOf is the acr and amr of a login passed with a challenge of kind k.
func methodOf(k challenge.Kind) (string, []string) {
	if k == challenge.KindActions {
		return authn.ACRFaceActions, []string{authn.AMRFace, authn.AMRLiveness, authn.AMRFaceActions}
	}
	return authn.ACRFaceLiveness, []string{authn.AMRFace, authn.AMRLiveness, authn.AMRSpokenDigits}
}
