package web

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Languages the pages are written in; the first is the default.
var Languages = []string{"en", "zh"}

const langCookie = "trustid_lang"

// language picks the page language: ?lang= (remembered in a cookie), the
// cookie, then the browser's Accept-Language, then English.
func (s *Site) language(w http.ResponseWriter, r *http.Request) string {
	if q := r.URL.Query().Get("lang"); q != "" {
		if l := match(q); l != "" {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
				Secure: !s.cfg.InsecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode})
			return l
		}
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l := match(c.Value); l != "" {
			return l
		}
	}
	return Negotiate(r.Header.Get("Accept-Language"))
}

// Negotiate returns the supported language the Accept-Language header
// prefers (by q value, then order), or "en".
func Negotiate(header string) string {
	best, bestQ := "en", -1.0
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		q -= float64(i) * 1e-6 // earlier wins ties
		if l := match(tag); l != "" && q > bestQ && q > 0 {
			best, bestQ = l, q
		}
	}
	return best
}

func match(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	for _, l := range Languages {
		if tag == l || strings.HasPrefix(tag, l+"-") {
			return l
		}
	}
	return ""
}

func otherLang(l string) string {
	if l == "zh" {
		return "en"
	}
	return "zh"
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	// replaceN fills a text's {n} (used as: text | replaceN n).
	"replaceN": func(n int, s string) string { return strings.ReplaceAll(s, "{n}", strconv.Itoa(n)) },
}

// jsMessages is the JSON of the strings the scripts show, for lang.
func jsMessages(lang string) string {
	m := map[string]string{}
	for k, v := range dict[lang] {
		if strings.HasPrefix(k, "js.") {
			m[strings.TrimPrefix(k, "js.")] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// pageTexts are the strings of the pages but the net certificate's
// (certTexts, i18n_cert.go) and issue 20's (rulesDict, rules.go); dict
// (rules.go) joins them. Keys starting with "js." are passed to the scripts.
var pageTexts = map[string]map[string]string{
	"en": {
		"lang.name": "English", "lang.switch": "中文", "brand": "TrustID", "skip": "Skip to content",
		"login.title":          "Sign in with your face",
		"login.lead":           "Confirm who you are: read four digits aloud on camera. It takes about five seconds.",
		"login.id":             "ID number",
		"login.id.help":        "18 characters, as on your resident identity card.",
		"login.next":           "Continue",
		"login.camera":         "Allow camera and microphone",
		"login.cam.help":       "Your browser will ask for permission. The recording is used only for this sign-in.",
		"login.digits":         "Read these digits aloud",
		"login.digits.help":    "Press Start, look at the camera and say the digits clearly, one by one.",
		"login.start":          "Start recording",
		"login.retry":          "Try again with new digits",
		"login.passkey":        "Sign in with a passkey",
		"login.or":             "or",
		"login.outline":        "Keep your face inside the outline",
		"login.privacy":        "Face and voice are checked on the server and not kept after the decision.",
		"consent.title":        "Allow access?",
		"scope.openid":         "Sign you in (a pseudonymous identifier for this service, how and when you were verified)",
		"scope.offline_access": "Stay signed in (refresh without asking you again)",
		"scope.profile":        "Your real name", "scope.id_number": "Your ID number", "scope.masked": " (masked)",
		"scope.identity":           "Proof of how and when your identity was verified",
		"consent.asks":             "asks to:",
		"consent.allow":            "Allow",
		"consent.deny":             "Deny",
		"logout.title":             "Sign out?",
		"logout.asks":              "asks to sign you out of TrustID.",
		"logout.question":          "Do you want to sign out of TrustID?",
		"logout.confirm":           "Sign out",
		"logout.stay":              "Stay signed in",
		"account.title":            "Your account",
		"account.signin":           "Sign in through an app or service to see your account.",
		"error.title":              "Something went wrong",
		"error.request":            "The request could not be read. Go back and try again.",
		"error.forbidden":          "The form has expired. Reload the page and try again.",
		"error.refused":            "This is not allowed for your account.",
		"error.notfound":           "There is nothing here any more.",
		"error.unavailable":        "The service is busy. Please try again in a moment.",
		"error.internal":           "Something went wrong on our side. Please try again later.",
		"account.qr":               "Net certificate",
		"account.qr.refresh":       "Refresh now",
		"account.passkeys":         "Passkeys",
		"account.passkeys.none":    "No passkeys yet.",
		"account.passkeys.add":     "Add a passkey",
		"account.passkeys.remove":  "Remove",
		"account.passkeys.name":    "Name for the new passkey (optional)",
		"account.passkeys.unnamed": "Passkey",
		"account.apps":             "Connected apps",
		"account.apps.none":        "No apps have access.",
		"account.requests":         "Sign-in requests",
		"account.requests.help":    "A desk or service asking you to sign in. Approve only if the code matches the one you are shown there.",
		"account.revoke":           "Revoke",
		"account.log":              "Who verified your certificate",
		"account.log.none":         "Nobody has verified your certificate yet.",
		"account.log.when":         "When", "account.log.who": "Who", "account.log.what": "What", "account.log.purpose": "Purpose", "account.log.outcome": "Outcome",
		"account.granted":  "Granted",
		"account.created":  "Added",
		"desk.title":       "Verifier desk",
		"desk.lead":        "Scan a citizen's net certificate, state the purpose, and see only what your role may see.",
		"desk.creds":       "Desk credentials",
		"desk.client":      "Client ID",
		"desk.secret":      "Client secret",
		"desk.purpose":     "Purpose",
		"desk.scan":        "Scan with camera",
		"desk.upload":      "Or upload a photo of the code",
		"desk.paste":       "Or paste the code text",
		"desk.verify":      "Verify",
		"desk.result":      "Result",
		"desk.face":        "Counter face check",
		"desk.face.help":   "Take a photo of the person at the desk to compare with the certificate holder.",
		"desk.face.take":   "Take photo and compare",
		"purpose.check_in": "Hotel check-in", "purpose.vehicle_registration": "Vehicle registration", "purpose.driving_licence": "Driving licence",
		"msg.expired":       "This sign-in has expired. Return to the application and start again.",
		"js.idInvalid":      "Enter an 18-character ID number (digits, last may be X).",
		"js.noCamera":       "This browser cannot use the camera. Try another browser or device.",
		"js.denied":         "Camera or microphone permission was refused. Allow both and try again.",
		"js.faceOK":         "Face found. Good light.",
		"js.tooDark":        "Too dark: move to a brighter place.",
		"js.tooBright":      "Too bright: avoid light behind or on the camera.",
		"js.noFace":         "No face found: look straight at the camera.",
		"js.tooFar":         "Too far: move closer.",
		"js.tooClose":       "Too close: move back a little.",
		"js.centre":         "Centre your face in the outline.",
		"js.getting":        "Getting your digits…",
		"js.ready":          "Ready. Press Start when you are set.",
		"js.recording":      "Recording: say the digits now.",
		"js.uploading":      "Checking… this takes a moment.",
		"js.success":        "Verified. Continuing…",
		"js.failed":         "We could not confirm your identity. Please try again with new digits.",
		"js.expired":        "This sign-in has expired. Return to the application and start again.",
		"js.busy":           "The service is busy. Please try again in a moment.",
		"js.locked":         "Too many attempts. Please wait a few minutes.",
		"js.lockedFor":      "Too many attempts from this device. Try again in {n} min, or sign in with a passkey.",
		"js.again":          "The recording could not be checked. Please try again with new digits.",
		"js.secondsLeft":    "Refreshes in {n} s",
		"js.reqNone":        "No pending requests.",
		"js.reqApprove":     "Approve",
		"js.reqDeny":        "Deny",
		"js.reqApproved":    "Approved.",
		"js.reqDenied":      "Denied.",
		"js.reqStronger":    "This request needs a stronger sign-in: sign in again first.",
		"js.reqFresh":       "Sign in again to approve: your last sign-in is more than 15 minutes old.",
		"js.reqError":       "The request could not be answered; try again.",
		"js.verifying":      "Verifying…",
		"js.verified":       "Valid certificate",
		"js.refused":        "Refused",
		"js.decoding":       "Reading the code…",
		"js.noCode":         "No QR code found in the image.",
		"js.tokenError":     "The desk credentials were refused.",
		"js.match":          "Match: the person is the certificate holder.",
		"js.noMatch":        "No match.",
		"js.passkeyFailed":  "Passkey sign-in did not work.",
		"js.revoked":        "Access revoked.",
		"js.pkCreating":     "Follow your browser's prompt to create the passkey…",
		"js.pkAdded":        "Passkey added. You can use it to sign in next time.",
		"js.pkCancelled":    "Passkey creation was cancelled or timed out. Nothing was added.",
		"js.pkExists":       "This device already holds a passkey for your account.",
		"js.pkNeedLogin":    "Sign in again with your face to add a passkey (a face check is required).",
		"js.pkUnavailable":  "Passkeys are not available on this server.",
		"js.pkFailed":       "The passkey could not be added. Please try again.",
		"js.pkRemoving":     "Removing the passkey…",
		"js.pkRemoved":      "Passkey removed.",
		"js.pkRemoveFailed": "The passkey could not be removed.",
		"js.attr.name":      "Name", "js.attr.id_number": "ID number", "js.attr.id_number_masked": "ID number (masked)",
		"js.attr.level": "Assurance level", "js.attr.expires": "Certificate expires", "js.attr.face_check": "Face check available",
		"js.holder": "Holder (pseudonym)",

		// The action challenge (#19).
		"js.preparing":           "Preparing your check…",
		"js.digitsTitle":         "Read these digits aloud",
		"js.digitsHelp":          "Press Start, look at the camera and say the digits clearly, one by one.",
		"js.actionsTitle":        "Do these actions, one at a time",
		"js.actionsHelp":         "Press Start, look at the camera and do each action when it lights up.",
		"js.actionsRec":          "Recording: do the highlighted action.",
		"js.actNow":              "now",
		"js.actDone":             "done",
		"js.act.blink":           "Blink",
		"js.act.turn_left":       "Turn your head to your left, then back",
		"js.act.turn_right":      "Turn your head to your right, then back",
		"js.act.nod":             "Nod: head down, then back up",
		"js.act.open_mouth":      "Open your mouth wide, then close it",
		"js.actOther.blink":      "眨眨眼",
		"js.actOther.turn_left":  "向左转头，再转回",
		"js.actOther.turn_right": "向右转头，再转回",
		"js.actOther.nod":        "点点头：低头，再抬起",
		"js.actOther.open_mouth": "张大嘴，再合上",
		"js.digitsUnavailable":   "This application asks you to read digits aloud, which cannot be checked in this language yet. Switch to English or sign in with a passkey.",
	},
	"zh": {
		"lang.name": "中文", "lang.switch": "English", "brand": "可信身份认证", "skip": "跳到正文",
		"login.title":          "刷脸登录",
		"login.lead":           "请在镜头前按提示完成两三个简单动作（眨眼、转头、点头或张嘴），以确认是您本人。全程约十秒。",
		"login.id":             "身份证号码",
		"login.id.help":        "18 位，与居民身份证一致。",
		"login.next":           "下一步",
		"login.camera":         "允许使用摄像头和麦克风",
		"login.cam.help":       "浏览器会请求授权。录制内容仅用于本次登录。",
		"login.digits":         "请朗读以下数字",
		"login.digits.help":    "点击“开始录制”，正对镜头，逐个清楚地读出数字。",
		"login.start":          "开始录制",
		"login.retry":          "换一组新的提示重试",
		"login.passkey":        "使用通行密钥登录",
		"login.or":             "或",
		"login.outline":        "请将面部保持在轮廓内",
		"login.privacy":        "人脸和声音仅在服务器上核验，判定后不保留。",
		"consent.title":        "是否允许访问？",
		"scope.openid":         "登录（本服务专用的化名标识，以及您何时、如何完成核验）",
		"scope.offline_access": "保持登录（无需再次询问即可刷新）",
		"scope.profile":        "您的真实姓名", "scope.id_number": "您的身份证号码", "scope.masked": "（部分隐藏）",
		"scope.identity":           "身份核验的方式与时间证明",
		"consent.asks":             "请求：",
		"consent.allow":            "允许",
		"consent.deny":             "拒绝",
		"logout.title":             "是否退出登录？",
		"logout.asks":              "请求将您从 TrustID 退出登录。",
		"logout.question":          "是否退出 TrustID 登录？",
		"logout.confirm":           "退出登录",
		"logout.stay":              "保持登录",
		"account.title":            "我的账户",
		"account.signin":           "请先通过应用或服务登录，再查看账户。",
		"error.title":              "出错了",
		"error.request":            "无法读取该请求，请返回后重试。",
		"error.forbidden":          "表单已过期，请刷新页面后重试。",
		"error.refused":            "您的账户无权执行此操作。",
		"error.notfound":           "此内容已不存在。",
		"error.unavailable":        "服务繁忙，请稍后再试。",
		"error.internal":           "服务出现问题，请稍后再试。",
		"account.qr":               "网络身份证书",
		"account.qr.refresh":       "立即刷新",
		"account.passkeys":         "通行密钥",
		"account.passkeys.none":    "尚未添加通行密钥。",
		"account.passkeys.add":     "添加通行密钥",
		"account.passkeys.remove":  "删除",
		"account.passkeys.name":    "新通行密钥的名称（可选）",
		"account.passkeys.unnamed": "通行密钥",
		"account.apps":             "已授权的应用",
		"account.apps.none":        "没有应用获得授权。",
		"account.requests":         "登录请求",
		"account.requests.help":    "柜台或服务请求您登录。仅当代码与对方展示的一致时才批准。",
		"account.revoke":           "撤销",
		"account.log":              "证书核验记录",
		"account.log.none":         "尚无人核验过您的证书。",
		"account.log.when":         "时间", "account.log.who": "核验方", "account.log.what": "操作", "account.log.purpose": "用途", "account.log.outcome": "结果",
		"account.granted":  "授权于",
		"account.created":  "添加于",
		"desk.title":       "核验台",
		"desk.lead":        "扫描公民的网络身份证书，选择用途，仅查看您的角色可见的信息。",
		"desk.creds":       "核验台凭据",
		"desk.client":      "客户端 ID",
		"desk.secret":      "客户端密钥",
		"desk.purpose":     "用途",
		"desk.scan":        "用摄像头扫码",
		"desk.upload":      "或上传二维码照片",
		"desk.paste":       "或粘贴二维码文本",
		"desk.verify":      "核验",
		"desk.result":      "结果",
		"desk.face":        "现场人脸比对",
		"desk.face.help":   "为前台的本人拍照，与证书持有人比对。",
		"desk.face.take":   "拍照并比对",
		"purpose.check_in": "酒店入住登记", "purpose.vehicle_registration": "机动车登记", "purpose.driving_licence": "驾驶证业务",
		"msg.expired":       "本次登录已过期，请返回应用重新开始。",
		"js.idInvalid":      "请输入 18 位身份证号码（最后一位可以是 X）。",
		"js.noCamera":       "此浏览器无法使用摄像头，请换用其他浏览器或设备。",
		"js.denied":         "摄像头或麦克风权限被拒绝。请同时允许两者后重试。",
		"js.faceOK":         "已检测到人脸，光线良好。",
		"js.tooDark":        "光线太暗，请到明亮处。",
		"js.tooBright":      "光线太强，请避免逆光或强光直射镜头。",
		"js.noFace":         "未检测到人脸，请正对镜头。",
		"js.tooFar":         "距离太远，请靠近一些。",
		"js.tooClose":       "距离太近，请稍微后退。",
		"js.centre":         "请将面部移到轮廓中央。",
		"js.getting":        "正在获取数字……",
		"js.ready":          "准备好后请点击“开始录制”。",
		"js.recording":      "正在录制：请读出数字。",
		"js.uploading":      "正在核验，请稍候……",
		"js.success":        "核验通过，正在继续……",
		"js.failed":         "未能确认您的身份，请换一组新的提示重试。",
		"js.expired":        "本次登录已过期，请返回应用重新开始。",
		"js.busy":           "服务繁忙，请稍后再试。",
		"js.locked":         "尝试次数过多，请几分钟后再试。",
		"js.lockedFor":      "此设备尝试次数过多，请 {n} 分钟后再试，或使用通行密钥登录。",
		"js.again":          "无法检查这段录像，请重试。",
		"js.secondsLeft":    "{n} 秒后刷新",
		"js.reqNone":        "没有待处理的请求。",
		"js.reqApprove":     "批准",
		"js.reqDeny":        "拒绝",
		"js.reqApproved":    "已批准。",
		"js.reqDenied":      "已拒绝。",
		"js.reqStronger":    "此请求需要更高等级的登录：请先重新登录。",
		"js.reqFresh":       "请重新登录后再批准：上次登录已超过15分钟。",
		"js.reqError":       "无法处理该请求，请重试。",
		"js.verifying":      "正在核验……",
		"js.verified":       "证书有效",
		"js.refused":        "核验未通过",
		"js.decoding":       "正在识别二维码……",
		"js.noCode":         "图片中未找到二维码。",
		"js.tokenError":     "核验台凭据被拒绝。",
		"js.match":          "比对一致：此人是证书持有人。",
		"js.noMatch":        "比对不一致。",
		"js.passkeyFailed":  "通行密钥登录失败。",
		"js.pkCreating":     "请按浏览器提示创建通行密钥……",
		"js.pkAdded":        "已添加通行密钥，下次可用它登录。",
		"js.pkCancelled":    "已取消或超时，未添加通行密钥。",
		"js.pkExists":       "此设备已有您账户的通行密钥。",
		"js.pkNeedLogin":    "请先刷脸重新登录后再添加通行密钥（需要人脸核验）。",
		"js.pkUnavailable":  "本服务器未启用通行密钥。",
		"js.pkFailed":       "未能添加通行密钥，请重试。",
		"js.pkRemoving":     "正在删除通行密钥……",
		"js.pkRemoved":      "已删除通行密钥。",
		"js.pkRemoveFailed": "未能删除通行密钥。",
		"js.revoked":        "已撤销授权。",
		"js.attr.name":      "姓名", "js.attr.id_number": "身份证号码", "js.attr.id_number_masked": "身份证号码（部分隐藏）",
		"js.attr.level": "认证等级", "js.attr.expires": "证书有效期至", "js.attr.face_check": "可进行人脸比对",
		"js.holder": "持有人（化名）",

		// The action challenge (#19).
		"js.preparing":           "正在准备……",
		"js.digitsTitle":         "请朗读以下数字",
		"js.digitsHelp":          "点击“开始录制”，正对镜头，逐个清楚地读出数字。",
		"js.actionsTitle":        "请依次完成以下动作",
		"js.actionsHelp":         "点击“开始录制”，正对镜头，按亮起的提示逐个完成动作。",
		"js.actionsRec":          "正在录制：请完成亮起的动作。",
		"js.actNow":              "现在",
		"js.actDone":             "已完成",
		"js.act.blink":           "眨眨眼",
		"js.act.turn_left":       "向左转头，再转回",
		"js.act.turn_right":      "向右转头，再转回",
		"js.act.nod":             "点点头：低头，再抬起",
		"js.act.open_mouth":      "张大嘴，再合上",
		"js.actOther.blink":      "Blink",
		"js.actOther.turn_left":  "Turn your head to your left, then back",
		"js.actOther.turn_right": "Turn your head to your right, then back",
		"js.actOther.nod":        "Nod: head down, then back up",
		"js.actOther.open_mouth": "Open your mouth wide, then close it",
		"js.digitsUnavailable":   "该应用要求朗读数字，当前语言暂不支持核验。请切换到英文，或使用通行密钥登录。",
	},
}
