package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trustid/trustid/authn/identity"
	"github.com/trustid/trustid/certs"
	"github.com/trustid/trustid/internal/audit"
	"github.com/trustid/trustid/internal/httperr"
	"github.com/trustid/trustid/internal/store"
)

// The parts of the pages that the 2025 national rules add (issue 20): the
// citizen's 网号 on the account page, the separate claims consent, what
// each app may see in plaintext and since when, and the audit of a
// revocation. Kept apart from account.go so the certificate section and
// this one change independently.

// NetworkNumbers gives a citizen's 网号, assigning it on first use
// (*netnumber.Assigner satisfies it).
type NetworkNumbers interface {
	Ensure(ctx context.Context, citizenID string) (string, error)
}

// Auditor records the citizen's decisions made on the pages
// (*audit.Recorder satisfies it).
type Auditor interface {
	RecordOrLog(ctx context.Context, e *store.AuditEvent)
}

// roleView groups the desk's purposes by the verifier role that may use
// them, so a desk sees which purposes are its own.
type roleView struct {
	Role     string
	Purposes []string
}

// rolePurposes groups ps (sorted by role, then purpose).
func rolePurposes(ps []purposeView) []roleView {
	var out []roleView
	for _, p := range ps {
		if len(out) == 0 || out[len(out)-1].Role != p.Role {
			out = append(out, roleView{Role: p.Role})
		}
		out[len(out)-1].Purposes = append(out[len(out)-1].Purposes, p.Purpose)
	}
	return out
}

// AccountClientID is the first-party public client through which a
// signed-out citizen signs in to the account page (cmd registers it with
// the redirect URI issuer+"/account").
const AccountClientID = "trustid-account"

// accountSignIn starts a sign-in for the account page: an authorization
// request of the account client (code + PKCE). The browser session the
// sign-in creates is what the account page reads; the code that comes
// back on /account is never redeemed and expires within a minute.
func (s *Site) accountSignIn(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Issuer == "" {
		http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
		return
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		panic(fmt.Sprintf("web: random: %v", err))
	}
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(b)))
	q := url.Values{
		"client_id": {AccountClientID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri":   {s.cfg.Issuer + PathAccount},
		"state":          {base64.RawURLEncoding.EncodeToString(b[:16])},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	http.Redirect(w, r, s.cfg.Prefix+"/oauth2/auth?"+q.Encode(), http.StatusSeeOther)
}

// AuthLog lists a citizen's verifications, newest first (cmd wires
// audit.AuthLog on the audit store).
type AuthLog func(ctx context.Context, citizenID string, limit int) ([]audit.AuthEntry, error)

type signInView struct {
	At                     time.Time
	App, Method, ACR, Kind string
	OK                     bool
}

// rulesSignIns adds the citizen's own authentication log: the sign-ins and
// authorisations (certificate checks have their own table).
func (s *Site) rulesSignIns(ctx context.Context, citizenID string, d map[string]any) {
	if s.cfg.AuthLog == nil {
		return
	}
	es, err := s.cfg.AuthLog(ctx, citizenID, 200)
	if err != nil {
		s.cfg.Logger.Warn("web: authentication log", "err", err)
		return
	}
	names := map[string]string{}
	out := []signInView{}
	for _, e := range es {
		if e.Kind == "certificate" || len(out) >= 20 {
			continue
		}
		v := signInView{At: e.At, Method: e.Method, ACR: e.ACR, Kind: e.Kind, OK: e.Result == "ok"}
		if id := strings.TrimPrefix(e.Party, "client:"); id != "" {
			if _, ok := names[id]; !ok {
				names[id] = id
				if s.cfg.Clients != nil {
					if c, err := s.cfg.Clients.Get(ctx, id); err == nil && c.Name != "" {
						names[id] = c.Name
					}
				}
			}
			v.App = names[id]
		}
		out = append(out, v)
	}
	d["SignIns"], d["HasSignIns"] = out, true
}

// FaceTemplates lists and deletes a citizen's face templates
// (*identity.Service satisfies it).
type FaceTemplates interface {
	Templates(ctx context.Context, citizenID string) ([]*store.Template, error)
	DeleteTemplate(ctx context.Context, actor, citizenID, templateID string) error
}

type templateView struct {
	ID, Kind  string
	Created   time.Time
	Deletable bool
}

// rulesTemplates adds the face data section: what is held and since when.
func (s *Site) rulesTemplates(ctx context.Context, citizenID string, d map[string]any) {
	if s.cfg.FaceTemplates == nil {
		return
	}
	ts, err := s.cfg.FaceTemplates.Templates(ctx, citizenID)
	if err != nil {
		s.cfg.Logger.Warn("web: face templates", "err", err)
		return
	}
	out := []templateView{}
	for _, t := range ts {
		out = append(out, templateView{ID: t.ID, Kind: string(t.Kind), Created: t.CreatedAt, Deletable: t.Kind == store.TemplateLive})
	}
	d["Templates"], d["HasTemplates"] = out, true
}

// deleteTemplate deletes one of the citizen's enrolled face templates
// (CSRF-checked form post of template_id).
func (s *Site) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.session(r)
	if err != nil || s.cfg.FaceTemplates == nil {
		return loginRequired(err)
	}
	id := r.PostFormValue("template_id")
	if id == "" || len(id) > 100 {
		return httperr.InvalidRequest("template_id is required")
	}
	err = s.cfg.FaceTemplates.DeleteTemplate(r.Context(), "citizen:"+sess.CitizenID, sess.CitizenID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httperr.NotFound("no such face template").WithCause(err)
	case errors.Is(err, identity.ErrNotYours):
		return httperr.New(http.StatusForbidden, "not_yours", "this face template belongs to another account")
	case errors.Is(err, identity.ErrRegisterTemplate):
		return httperr.New(http.StatusForbidden, "register_template", "the register photo's template is kept with the register")
	case err != nil:
		return httperr.Unavailable(fmt.Errorf("web: delete template: %w", err))
	}
	http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
	return nil
}

// LoginApps names the app a sign-in in progress is for (cmd adapts the
// provider's login state and the client register).
type LoginApps interface {
	LoginApp(r *http.Request) (name string, ok bool)
}

// loginApp is the login page's app name, "" when unknown.
func (s *Site) loginApp(r *http.Request) string {
	if s.cfg.LoginApps == nil {
		return ""
	}
	name, _ := s.cfg.LoginApps.LoginApp(r)
	return name
}

// ConsentWriter stores a citizen's consent (store.ConsentStore
// satisfies it): the account page's "allow this desk" writes one.
type ConsentWriter interface {
	Put(ctx context.Context, c *store.Consent) error
}

// verifierView is a desk or office that verified the citizen's
// certificate, with what it sees in plaintext.
type verifierView struct {
	ClientID, Name, Role string
	Sees                 []string // translated plaintext attributes allowed
	CanAsk               []string // translated attributes its role may ask
}

// consentsOf lists the citizen's consents (nil without a consent store).
func (s *Site) consentsOf(ctx context.Context, citizenID string) ([]*store.Consent, error) {
	if s.cfg.Consents == nil {
		return nil, nil
	}
	return s.cfg.Consents.ListByCitizen(ctx, citizenID)
}

// rulesVerifiers lists the verifiers of the certificate log with what each
// may see: the result only until the citizen allows it more.
func (s *Site) rulesVerifiers(lang string, d map[string]any, cons []*store.Consent, log []certs.LogEntry) {
	if s.cfg.ConsentWriter == nil {
		return
	}
	allowed := map[string][]string{}
	for _, c := range cons {
		allowed[c.ClientID] = c.Claims
	}
	seen := map[string]bool{}
	var out []verifierView
	for _, e := range log {
		if e.Verifier == "" || e.Role == "" || seen[e.Verifier] {
			continue
		}
		seen[e.Verifier] = true
		v := verifierView{ClientID: e.Verifier, Name: e.VerifierName, Role: e.Role}
		if v.Name == "" {
			v.Name = e.Verifier
		}
		for _, a := range s.cfg.Policy.PlaintextFor(e.Role) {
			v.CanAsk = append(v.CanAsk, attrLabel(lang, a))
			if slices.Contains(allowed[e.Verifier], a) {
				v.Sees = append(v.Sees, attrLabel(lang, a))
			}
		}
		if len(v.CanAsk) > 0 {
			out = append(out, v)
		}
	}
	d["Verifiers"] = out
}

func attrLabel(lang, a string) string {
	if t, ok := dict[lang]["attr."+a]; ok {
		return t
	}
	return a
}

// allowVerifier records that the citizen allows a verifier (that verified
// their certificate) to see the plaintext attributes its role may ask
// (CSRF-checked form post of client_id). Withdrawing is the connected
// apps' revoke.
func (s *Site) allowVerifier(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.session(r)
	if err != nil || s.cfg.ConsentWriter == nil || s.cfg.Clients == nil {
		return loginRequired(err)
	}
	id := r.PostFormValue("client_id")
	if id == "" || len(id) > 200 {
		return httperr.InvalidRequest("client_id is required")
	}
	ctx := r.Context()
	c, err := s.cfg.Clients.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httperr.NotFound("no such verifier").WithCause(err)
	case err != nil:
		return httperr.Unavailable(fmt.Errorf("web: allow verifier: %w", err))
	}
	attrs := s.cfg.Policy.PlaintextFor(c.Role)
	if len(attrs) == 0 {
		return httperr.InvalidRequest("this client is not a verifier that may ask for more than the result")
	}
	now := s.cfg.Now().UTC()
	if err := s.cfg.ConsentWriter.Put(ctx, &store.Consent{CitizenID: sess.CitizenID, ClientID: id, Claims: attrs,
		GrantedAt: now, ClaimsGrantedAt: now}); err != nil {
		return httperr.Unavailable(fmt.Errorf("web: allow verifier: %w", err))
	}
	if s.cfg.Audit != nil {
		s.cfg.Audit.RecordOrLog(ctx, &store.AuditEvent{Actor: "citizen:" + sess.CitizenID, Action: "cert.consent",
			Subject: sess.CitizenID, Object: id, Outcome: "ok", Detail: map[string]string{"attributes": strings.Join(attrs, " "),
				"role": c.Role, "at": now.Format(time.RFC3339)}})
	}
	http.Redirect(w, r, s.cfg.Prefix+PathAccount, http.StatusSeeOther)
	return nil
}

// ConsentClaim is one plaintext claim on the claims consent page.
type ConsentClaim struct {
	Name, Text string
	Masked     bool
}

type claimView struct {
	Name, Label string
}

// claimLabel is a claim's translated name.
func claimLabel(lang, name string, masked bool) string {
	t, ok := dict[lang]["claim."+name]
	if !ok {
		t = name
	}
	if masked {
		t += dict[lang]["scope.masked"]
	}
	return t
}

// rulesAccount adds the account page's rules section: the 网号 and, per
// connected app, the plaintext claims it may see.
func (s *Site) rulesAccount(ctx context.Context, lang, citizenID string, d map[string]any, cons []*store.Consent) {
	if s.cfg.NetworkNumbers != nil {
		nn, err := s.cfg.NetworkNumbers.Ensure(ctx, citizenID)
		if err != nil {
			s.cfg.Logger.Warn("web: network number", "err", err)
		} else {
			d["NetworkNumber"] = nn
		}
	}
	shared := map[string][]string{}
	since := map[string]time.Time{}
	for _, c := range cons {
		for _, name := range claimOrder {
			if slices.Contains(c.Claims, name) {
				shared[c.ClientID] = append(shared[c.ClientID], claimLabel(lang, name, false))
			}
		}
		since[c.ClientID] = c.ClaimsGrantedAt
	}
	d["Shared"], d["SharedSince"] = shared, since
}

// rulesFuncs are the template functions of this part.
var rulesFuncs = template.FuncMap{
	"join": strings.Join,
	// tr translates key, or shows fallback when there is no translation
	// (an outcome code, a new action).
	"tr": func(t map[string]string, key, fallback string) string {
		if v, ok := t[key]; ok {
			return v
		}
		return fallback
	},
	// shareArgs is what the "shares" block needs for one app.
	"shareArgs": func(v view, clientID string) map[string]any {
		d, _ := v.Data.(map[string]any)
		shared, _ := d["Shared"].(map[string][]string)
		since, _ := d["SharedSince"].(map[string]time.Time)
		return map[string]any{"T": v.T, "Items": shared[clientID], "Since": since[clientID]}
	},
}

// claimOrder is the order claims are listed in (oidc.PlaintextClaims).
var claimOrder = []string{"name", "birthdate", "id_number", "id_number_masked", "verified_claims"}

// favicon serves the site's icon at /favicon.ico (browsers ask for it on
// every page; a 404 there fills the logs).
func (s *Site) favicon(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/static/favicon.svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(b)
}

// auditRevoke records that the citizen revoked an app's consent.
func (s *Site) auditRevoke(r *http.Request, citizenID, clientID string) {
	if s.cfg.Audit == nil {
		return
	}
	s.cfg.Audit.RecordOrLog(r.Context(), &store.AuditEvent{Actor: "citizen:" + citizenID, Action: "oidc.consent.revoke",
		Subject: citizenID, Object: clientID, Outcome: "ok", Detail: map[string]string{"via": "account"}})
}

// rulesDict holds the strings of this part, merged into dict.
var rulesDict = map[string]map[string]string{
	"en": {
		"desk.file.choose":        "Choose a photo of the code",
		"js.lightOK":              "Good light. Keep your face inside the outline.",
		"login.app":               "asks you to sign in.",
		"log.action.verify":       "Checked your certificate",
		"log.action.face_check":   "Compared your face at the counter",
		"log.action.issue":        "Certificate issued",
		"log.action.revoke":       "Certificate revoked",
		"log.outcome.ok":          "Done",
		"log.by.citizen":          "You",
		"log.by.operator":         "The operator",
		"log.by.system":           "TrustID",
		"js.withheld":             "Not shared by the holder",
		"js.withheldHelp":         "The holder can allow this desk on their account page, then show a new code.",
		"claim.id_number_masked":  "Your ID number (masked)",
		"account.faces":           "Your face data",
		"account.faces.help":      "Face templates are numbers computed from a face, not pictures. The one from your ID card photo belongs to the population register; the ones added after a sign-in are deleted after a year, or now if you wish.",
		"account.faces.register":  "From your ID card photo (register)",
		"account.faces.live":      "Added after a sign-in",
		"account.faces.delete":    "Delete",
		"account.faces.none":      "No face data is held for you.",
		"desk.purpose.choose":     "Choose the purpose of the check",
		"role.hotel":              "Hotel",
		"role.vehicle_office":     "Vehicle office",
		"js.choosePurpose":        "Choose the purpose of the check first.",
		"account.signin.link":     "Sign in to your account",
		"account.signins":         "Your sign-ins",
		"account.signins.help":    "Every time you signed in or an app was given the result of your sign-in. This log is kept as the law requires and given to authorities only on a lawful request.",
		"account.signins.none":    "No sign-ins yet.",
		"signin.kind.login":       "Signed in",
		"signin.kind.authorize":   "Result given to the app",
		"signin.kind.backchannel": "Desk request",
		"signin.method.face":      "face and spoken digits",
		"signin.method.passkey":   "passkey",
		"signin.failed":           "not confirmed",
		"signin.method.approve":   "approved by you",
		"signin.method.deny":      "refused by you",
		"signin.method.request":   "asked by the desk",
		"signin.method.token":     "result given to the desk",
		"log.action.consent":      "You allowed a desk to see more",
		"log.outcome.match":       "Match",
		"log.outcome.no_match":    "No match",
		"account.verifiers":       "Desks and offices",
		"account.verifiers.help":  "A desk that checks your net certificate gets only the result (valid, and a number for you that only it knows) unless you allow it more here. Withdraw it under connected apps.",
		"account.verifiers.sees":  "Sees",
		"account.verifiers.only":  "The result only",
		"account.verifiers.allow": "Allow it to see",
		"attr.name":               "your name",
		"attr.id_number":          "your ID number",
		"attr.id_number_masked":   "your ID number (masked)",
		"face.title":              "Use your face to sign in?",
		"face.purpose.h":          "Why",
		"face.purpose":            "To confirm that you are the person with this ID number: your face is compared with your ID card photo, and checked to be a live person reading the digits.",
		"face.kept.h":             "What is kept",
		"face.kept":               "Nothing of the video, picture or sound: they are checked in memory and discarded as soon as the decision is made. Kept: that you signed in, when, for which service and how (your authentication log).",
		"face.long.h":             "For how long",
		"face.long":               "The recording: about a second, only while it is checked. The authentication log: as long as the law requires; you can see it on your account page.",
		"face.choice":             "You can sign in without your face: with a passkey, or by a desk check.",
		"face.agree":              "I agree: use my face",
		"face.refuse":             "Do not use my face",
		"noface.title":            "Sign in without your face",
		"noface.passkey":          "If you added a passkey on this device, use it:",
		"noface.desk":             "Or ask at a service desk: the desk sends a sign-in request that you approve on your account page, or checks your identity document in person.",
		"noface.back":             "Back",
		"js.noConsent":            "Your face is not used. Choose another way to sign in.",
		"js.guardian":             "Face sign-in is not available for children under 14 without a guardian. Please sign in by a desk check with your guardian.",
		"claims.title":            "Share your identity?",
		"claims.lead":             "already gets the result of your sign-in (that it is you, how and when you were verified) but not who you are. Tick what you agree to share with it. Nothing is shared unless you tick it, and you can withdraw it on your account page at any time.",
		"claims.legend":           "Share with this app",
		"claims.share":            "Share the ticked items",
		"claims.none":             "Continue without sharing",
		"claim.name":              "Your real name",
		"claim.birthdate":         "Your date of birth",
		"claim.id_number":         "Your ID number",
		"claim.verified_claims":   "How and when your identity was verified",
		"scope.network_number":    "Your network number (网号)",
		"account.nn":              "Network number (网号)",
		"account.nn.help":         "Your network number stands for you in your net certificate and with services you allow, instead of your name and ID number. It never changes.",
		"account.shares":          "Sees",
		"account.shares.none":     "The sign-in result only",
		"account.shares.since":    "since",
		"scope.openid":            "Sign you in: the result only (that it is you, how and when you were verified), not your name or ID number",
	},
	"zh": {
		"desk.file.choose":        "选择二维码照片",
		"js.lightOK":              "光线良好。请将面部保持在轮廓内。",
		"login.app":               "请求您登录。",
		"log.action.verify":       "核验了您的证书",
		"log.action.face_check":   "在柜台比对了您的人脸",
		"log.action.issue":        "证书已签发",
		"log.action.revoke":       "证书已吊销",
		"log.outcome.ok":          "完成",
		"log.by.citizen":          "您本人",
		"log.by.operator":         "运营方",
		"log.by.system":           "TrustID",
		"js.withheld":             "持证人未提供",
		"js.withheldHelp":         "持证人可在账户页面允许本柜台查看，然后出示新的二维码。",
		"claim.id_number_masked":  "您的身份证号码（部分隐藏）",
		"account.faces":           "您的人脸数据",
		"account.faces.help":      "人脸模板是由面部计算出的一组数字，不是照片。来自身份证照片的模板属于人口登记数据；登录后添加的模板一年后删除，您也可以现在删除。",
		"account.faces.register":  "来自身份证照片（登记数据）",
		"account.faces.live":      "登录后添加",
		"account.faces.delete":    "删除",
		"account.faces.none":      "未保存您的人脸数据。",
		"desk.purpose.choose":     "请选择核验用途",
		"role.hotel":              "酒店",
		"role.vehicle_office":     "车管所",
		"js.choosePurpose":        "请先选择核验用途。",
		"account.signin.link":     "登录您的账户",
		"account.signins":         "您的登录记录",
		"account.signins.help":    "您每次登录或应用获得您的登录结果都记录在此。本记录按法律要求保存，仅在依法请求时提供给有关部门。",
		"account.signins.none":    "尚无登录记录。",
		"signin.kind.login":       "登录",
		"signin.kind.authorize":   "已向应用提供登录结果",
		"signin.kind.backchannel": "柜台请求",
		"signin.method.face":      "人脸与朗读数字",
		"signin.method.passkey":   "通行密钥",
		"signin.failed":           "未通过",
		"signin.method.approve":   "您已批准",
		"signin.method.deny":      "您已拒绝",
		"signin.method.request":   "柜台发起请求",
		"signin.method.token":     "已向柜台提供结果",
		"log.action.consent":      "您允许柜台查看更多信息",
		"log.outcome.match":       "一致",
		"log.outcome.no_match":    "不一致",
		"account.verifiers":       "柜台与窗口",
		"account.verifiers.help":  "核验您网络身份证书的柜台只能看到核验结果（有效，以及仅该柜台可见的一个编号），除非您在此允许其查看更多信息。可在已授权的应用中撤回。",
		"account.verifiers.sees":  "可见信息",
		"account.verifiers.only":  "仅核验结果",
		"account.verifiers.allow": "允许其查看",
		"attr.name":               "您的姓名",
		"attr.id_number":          "您的身份证号码",
		"attr.id_number_masked":   "您的身份证号码（部分隐藏）",
		"face.title":              "使用人脸识别登录？",
		"face.purpose.h":          "用途",
		"face.purpose":            "确认您就是该身份证号码的本人：将您的面部与身份证照片比对，并检测是本人在现场朗读数字。",
		"face.kept.h":             "保存哪些信息",
		"face.kept":               "不保存任何视频、图像或声音：仅在内存中核验，作出结果后立即删除。保存的是：您何时、为哪项服务、以何种方式登录（认证日志）。",
		"face.long.h":             "保存多久",
		"face.long":               "录像：约一秒，仅在核验期间。认证日志：按法律要求的期限保存，您可在账户页面查看。",
		"face.choice":             "您也可以不使用人脸登录：使用通行密钥，或到柜台核验。",
		"face.agree":              "同意使用人脸识别",
		"face.refuse":             "不使用人脸识别",
		"noface.title":            "不使用人脸登录",
		"noface.passkey":          "如果您已在本设备添加通行密钥，请使用：",
		"noface.desk":             "或到服务柜台办理：柜台发送登录请求，您在账户页面批准；或由工作人员当面核验身份证件。",
		"noface.back":             "返回",
		"js.noConsent":            "未使用您的人脸信息。请选择其他登录方式。",
		"js.guardian":             "未满14周岁的儿童在没有监护人的情况下无法使用人脸登录。请与监护人一起到柜台核验。",
		"claims.title":            "是否提供您的身份信息？",
		"claims.lead":             "已获得您的登录结果（确认是您本人，以及核验方式与时间），但不知道您是谁。请勾选您同意提供给它的信息。未勾选的信息不会提供，您也可以随时在账户页面撤回。",
		"claims.legend":           "提供给此应用",
		"claims.share":            "提供已勾选的信息",
		"claims.none":             "不提供，继续",
		"claim.name":              "您的真实姓名",
		"claim.birthdate":         "您的出生日期",
		"claim.id_number":         "您的身份证号码",
		"claim.verified_claims":   "身份核验的方式与时间",
		"scope.network_number":    "您的网号",
		"account.nn":              "网号",
		"account.nn.help":         "网号在您的网络身份证书中以及您授权的服务中代表您，不显示您的姓名和身份证号码。网号不会改变。",
		"account.shares":          "可见信息",
		"account.shares.none":     "仅登录结果",
		"account.shares.since":    "授权于",
		"scope.openid":            "登录：仅提供核验结果（确认是您本人，以及核验方式与时间），不提供您的姓名或身份证号码",
	},
}

// dict is every string of the pages: pageTexts, certTexts and rulesDict.
var dict = mergeDicts(withCertTexts(pageTexts), rulesDict)

func mergeDicts(ds ...map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, d := range ds {
		for lang, m := range d {
			if out[lang] == nil {
				out[lang] = map[string]string{}
			}
			for k, v := range m {
				out[lang][k] = v
			}
		}
	}
	return out
}
