package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/trustid/trustid"

type pkg struct {
	path    string
	doc     string
	imports []string // direct, non-test
	deps    []string // transitive, non-test
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	sep := "\x1f"
	cmd := exec.Command("go", "list", "-f",
		"{{.ImportPath}}"+sep+"{{.Doc}}"+sep+"{{join .Imports \" \"}}"+sep+"{{join .Deps \" \"}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.Split(sc.Text(), sep)
		if len(f) != 4 {
			t.Fatalf("unexpected go list line %q", sc.Text())
		}
		pkgs = append(pkgs, pkg{path: f[0], doc: f[1], imports: strings.Fields(f[2]), deps: strings.Fields(f[3])})
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// TestHeavyDependenciesStayInTheirPackage enforces STYLE.md: each heavy or
// native dependency is imported by exactly one package (or tree).
func TestHeavyDependenciesStayInTheirPackage(t *testing.T) {
	rules := []struct {
		name    string
		dep     string // import path prefix
		allowed func(pkg string) bool
	}{
		{"gocv", "gocv.io/x/gocv", func(p string) bool { return p == "authn/face" }},
		{"onnxruntime_go", "github.com/yalue/onnxruntime_go", func(p string) bool { return p == "internal/onnx" }},
		{"fosite", "github.com/ory/fosite", func(p string) bool { return p == "oidc" || strings.HasPrefix(p, "oidc/") }},
		{"pgx", "github.com/jackc/pgx", func(p string) bool { return p == "internal/store/postgres" }},
		{"go-redis", "github.com/redis/go-redis", func(p string) bool { return p == "internal/ephemeral/redis" }},
		{"go-webauthn", "github.com/go-webauthn/webauthn", func(p string) bool { return p == "authn/passkey" }},
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.imports {
			for _, r := range rules {
				if (imp == r.dep || strings.HasPrefix(imp, r.dep+"/")) && !r.allowed(rel(p.path)) {
					t.Errorf("%s imports %s (%s belongs to its own package only)", rel(p.path), imp, r.name)
				}
			}
		}
	}
}

// TestAreasDoNotImportEachOther keeps oidc and certs independent (cmd wires
// them through small interfaces) and keeps shared plumbing free of features.
func TestAreasDoNotImportEachOther(t *testing.T) {
	under := func(p, area string) bool { return p == area || strings.HasPrefix(p, area+"/") }
	forbidden := []struct{ from, to string }{
		{"oidc", "certs"}, {"certs", "oidc"},
		{"internal", "oidc"}, {"internal", "certs"}, {"internal", "authn"}, {"internal", "liveness"},
		{"authn", "cmd"}, {"liveness", "cmd"}, {"oidc", "cmd"}, {"certs", "cmd"},
		{"authn", "oidc"},
	}
	for _, p := range listPackages(t) {
		from := rel(p.path)
		for _, d := range p.deps {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			to := rel(d)
			for _, f := range forbidden {
				if under(from, f.from) && under(to, f.to) {
					t.Errorf("%s depends on %s", from, to)
				}
			}
		}
	}
}

// TestDecisionLinksNoEngine: the liveness decision and its pure checks
// (lip sync, visemes) reach the face engine, the face mesh and the speech
// recogniser only through interfaces that authn/facelogin adapts (#17), so
// they stay testable without OpenCV or ONNX Runtime.
func TestDecisionLinksNoEngine(t *testing.T) {
	pure := map[string]bool{"liveness": true, "liveness/lipsync": true, "liveness/viseme": true}
	engines := []string{"authn/face", "liveness/facemesh", "liveness/speech", "internal/onnx", "liveness/media/libav"}
	for _, p := range listPackages(t) {
		if !pure[rel(p.path)] {
			continue
		}
		for _, d := range p.deps {
			for _, e := range engines {
				if d == module+"/"+e {
					t.Errorf("%s links %s", rel(p.path), e)
				}
			}
		}
	}
}

// TestEveryPackageHasADocComment: a package says what it owns.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("%s has no package doc comment", rel(p.path))
		}
	}
}

// underPath reports whether package path p (module-relative) is dir or
// inside it.
func underPath(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// TestServiceBinaryDoesNotLinkTheLab: what evaluates, trains, experiments,
// generates test clips or mints benchmark tokens lives in lab/ and
// cmd/trustid-lab, and the service binary links none of it (STYLE.md).
func TestServiceBinaryDoesNotLinkTheLab(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "list", "-deps", "./cmd/trustid")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/cmd/trustid") {
		t.Fatalf("go list -deps ./cmd/trustid did not list the command itself: %q", deps)
	}
	for _, d := range deps {
		// The model converter is a set-up tool (cmd/trustid-convert).
		if p := rel(d); strings.HasPrefix(d, module+"/") && (underPath(p, "lab") || underPath(p, "cmd/trustid-lab") || underPath(p, "internal/tfliteconv")) {
			t.Errorf("cmd/trustid depends on %s", p)
		}
	}
}

// TestOnlyTheLabImportsTheLab: outside lab/ and cmd/trustid-lab, no
// package imports a lab package (test files may, for fixtures).
func TestOnlyTheLabImportsTheLab(t *testing.T) {
	for _, p := range listPackages(t) {
		from := rel(p.path)
		if underPath(from, "lab") || underPath(from, "cmd/trustid-lab") {
			continue
		}
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, module+"/") && underPath(rel(imp), "lab") {
				t.Errorf("%s imports %s (only the lab may)", from, rel(imp))
			}
		}
	}
}

// TestOIDCConsumesLoginMethodsThroughTheContract: the provider knows login
// methods only through the protocol-free contract package authn; the
// methods (authn/facelogin, authn/passkey) and the engines behind them are
// plugged in by cmd/.
func TestOIDCConsumesLoginMethodsThroughTheContract(t *testing.T) {
	under := func(p, area string) bool { return p == area || strings.HasPrefix(p, area+"/") }
	for _, p := range listPackages(t) {
		from := rel(p.path)
		if !under(from, "oidc") {
			continue
		}
		for _, d := range p.deps {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			if to := rel(d); under(to, "authn") && to != "authn" {
				t.Errorf("%s depends on %s (oidc may use only the contract package authn)", from, to)
			}
		}
	}
}

// TestNothingImportsACommand: cmd/ packages are binaries, leaves of the
// import graph (the service and the lab share code through packages).
func TestNothingImportsACommand(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, module+"/") && underPath(rel(imp), "cmd") {
				t.Errorf("%s imports %s", rel(p.path), rel(imp))
			}
		}
	}
}

// TestLivenessDecisionLinksNoEngine: the liveness decision (package
// liveness), its challenges and the action detectors are pure Go; the
// engines (OpenCV, ONNX Runtime: face, speech, face mesh) reach them only
// through the interfaces they declare, plugged in by authn/facelogin.
func TestLivenessDecisionLinksNoEngine(t *testing.T) {
	pure := map[string]bool{"liveness": true, "liveness/action": true, "liveness/challenge": true}
	for _, p := range listPackages(t) {
		if !pure[rel(p.path)] {
			continue
		}
		for _, d := range p.deps {
			if d == "gocv.io/x/gocv" || strings.HasPrefix(d, "github.com/yalue/onnxruntime_go") ||
				d == module+"/internal/onnx" || d == module+"/authn/face" || d == module+"/liveness/facemesh" || d == module+"/liveness/speech" {
				t.Errorf("%s depends on %s (engines come in through interfaces)", rel(p.path), d)
			}
		}
	}
}
