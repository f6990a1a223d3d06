package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/trustid/trustid/internal/config"
)

// No schema validator: kubeconform needs the Kubernetes JSON schemas from
// the network at run time, which CI does not have. These are structural
// checks of what the issue requires, and cross-checks between the files.

// at walks a decoded YAML tree by keys ("spec.template.spec") and list
// indexes ("containers.0"); nil when a step is missing.
func at(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch n := v.(type) {
		case map[string]any:
			v = n[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path string) string {
	s, _ := at(v, path).(string)
	return s
}

func num(v any, path string) int {
	n, _ := at(v, path).(int)
	return n
}

// docs decodes every YAML document of a file.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// manifests are the Kubernetes objects of k8s/, by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	k := docs(t, "k8s/kustomization.yaml")[0]
	listed := map[string]bool{}
	for _, r := range at(k, "resources").([]any) {
		listed[r.(string)] = true
	}
	files, _ := filepath.Glob("k8s/*.yaml")
	byKind := map[string]map[string]any{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in kustomization.yaml", f)
		}
		for _, d := range docs(t, f) {
			kind, api, name := str(d, "kind"), str(d, "apiVersion"), str(d, "metadata.name")
			if kind == "" || api == "" || name == "" {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name", f)
				continue
			}
			if byKind[kind] != nil {
				t.Errorf("%s: a second %s", f, kind)
			}
			byKind[kind] = d
		}
	}
	return byKind
}

// matches reports whether every label of sel is in labels.
func matches(sel, labels any) bool {
	s, _ := sel.(map[string]any)
	l, _ := labels.(map[string]any)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

// secretEnv are the settings a production node needs from its Secret (the
// configuration file holds none of them).
var secretEnv = map[string]string{
	"TRUSTID_POSTGRES_DSN":        "postgres://trustid@db.example:5432/trustid",
	"TRUSTID_REDIS_CLUSTER_ADDRS": "r0.example:6379,r1.example:6379,r2.example:6379",
	"TRUSTID_REDIS_PASSWORD":      "pw",
	"TRUSTID_ENCRYPTION_KEYS":     "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"TRUSTID_PRIMARY_KEY_ID":      "k1",
	"TRUSTID_LOOKUP_KEY":          "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"TRUSTID_ADMIN_TOKEN":         "admin",
}

func TestKubernetes(t *testing.T) {
	m := manifests(t)
	for _, kind := range []string{"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"} {
		if m[kind] == nil {
			t.Fatalf("no %s in k8s/", kind)
		}
	}
	dep := m["Deployment"]
	pod := at(dep, "spec.template.spec")
	podLabels := at(dep, "spec.template.metadata.labels")
	if !matches(at(dep, "spec.selector.matchLabels"), podLabels) {
		t.Error("Deployment: selector does not match the pod labels")
	}
	if at(pod, "securityContext.runAsNonRoot") != true || num(pod, "securityContext.runAsUser") == 0 {
		t.Error("Deployment: the pod must run as a non-root user")
	}
	c := at(pod, "containers.0")
	if c == nil {
		t.Fatal("Deployment: no container")
	}
	for _, check := range []struct {
		path string
		want any
	}{
		{"securityContext.readOnlyRootFilesystem", true},
		{"securityContext.allowPrivilegeEscalation", false},
		{"securityContext.capabilities.drop.0", "ALL"},
		{"readinessProbe.httpGet.path", "/readyz"},
		{"livenessProbe.httpGet.path", "/healthz"},
		{"startupProbe.httpGet.path", "/healthz"},
	} {
		if got := at(c, check.path); got != check.want {
			t.Errorf("Deployment container %s = %v, want %v", check.path, got, check.want)
		}
	}
	ports := map[string]int{}
	for _, p := range at(c, "ports").([]any) {
		ports[str(p, "name")] = num(p, "containerPort")
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if _, ok := ports[str(c, probe+".httpGet.port")]; !ok {
			t.Errorf("Deployment: %s names port %q, not a container port", probe, str(c, probe+".httpGet.port"))
		}
	}
	for _, r := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
		if at(c, "resources."+r) == nil {
			t.Errorf("Deployment: no resources.%s", r)
		}
	}
	// Every secret comes from the Secret, none is written in the manifest.
	env := map[string]string{}
	for _, e := range at(c, "env").([]any) {
		name := str(e, "name")
		if _, secret := secretEnv[name]; secret {
			if at(e, "value") != nil || str(e, "valueFrom.secretKeyRef.name") != "trustid-secrets" || str(e, "valueFrom.secretKeyRef.key") == "" {
				t.Errorf("Deployment: %s must come from secretKeyRef trustid-secrets", name)
			}
			env[name] = secretEnv[name]
		}
	}
	for name := range secretEnv {
		if _, ok := env[name]; !ok {
			t.Errorf("Deployment: %s is not set", name)
		}
	}
	// Writable paths are volumes; the configuration comes from the ConfigMap.
	mounts := map[string]string{}
	for _, v := range at(c, "volumeMounts").([]any) {
		mounts[str(v, "mountPath")] = str(v, "name")
	}
	for _, p := range []string{"/tmp", "/var/lib/trustid", "/etc/trustid"} {
		if mounts[p] == "" {
			t.Errorf("Deployment: nothing mounted on %s (read-only root filesystem)", p)
		}
	}

	// The ConfigMap's file is a valid production configuration with the
	// Secret's settings: strict keys, no development fallback.
	dir := t.TempDir()
	cfgText, _ := at(m["ConfigMap"], "data").(map[string]any)["trustid.yaml"].(string)
	if !strings.Contains(cfgText, "listen:") {
		t.Fatal("ConfigMap: no trustid.yaml with a listen address")
	}
	if err := os.WriteFile(filepath.Join(dir, "trustid.yaml"), []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "trustid.yaml"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ConfigMap trustid.yaml with the Secret's settings: %v", err)
	}
	if cfg.Dev || cfg.Storage.Driver != "postgres" || cfg.Ephemeral.Driver != "redis" || len(cfg.Ephemeral.RedisClusterAddrs) != 3 {
		t.Errorf("configuration: dev=%v storage=%s ephemeral=%s cluster=%v", cfg.Dev, cfg.Storage.Driver, cfg.Ephemeral.Driver, cfg.Ephemeral.RedisClusterAddrs)
	}
	if _, port, _ := strings.Cut(cfg.Listen, ":"); port != strconv.Itoa(ports["http"]) {
		t.Errorf("configuration listens on %q, the container port is %d", cfg.Listen, ports["http"])
	}
	if grace := time.Duration(num(pod, "terminationGracePeriodSeconds")) * time.Second; grace <= cfg.Limits.ShutdownGrace {
		t.Errorf("terminationGracePeriodSeconds %s must exceed shutdown_grace %s", grace, cfg.Limits.ShutdownGrace)
	}
	if !slices.ContainsFunc(at(pod, "volumes").([]any), func(v any) bool { return str(v, "configMap.name") == str(m["ConfigMap"], "metadata.name") }) {
		t.Error("Deployment: the ConfigMap is not mounted")
	}

	svc := m["Service"]
	if !matches(at(svc, "spec.selector"), podLabels) {
		t.Error("Service: selector does not match the pods")
	}
	if _, ok := ports[str(svc, "spec.ports.0.targetPort")]; !ok {
		t.Errorf("Service: targetPort %v is not a container port", at(svc, "spec.ports.0.targetPort"))
	}

	hpa := m["HorizontalPodAutoscaler"]
	if str(hpa, "spec.scaleTargetRef.kind") != "Deployment" || str(hpa, "spec.scaleTargetRef.name") != str(dep, "metadata.name") {
		t.Error("HPA: does not scale the Deployment")
	}
	minR, maxR := num(hpa, "spec.minReplicas"), num(hpa, "spec.maxReplicas")
	if minR < 2 || maxR < minR {
		t.Errorf("HPA: replicas %d..%d", minR, maxR)
	}
	if str(hpa, "spec.metrics.0.resource.name") != "cpu" {
		t.Error("HPA: logins are CPU-bound; scale on cpu")
	}

	pdb := m["PodDisruptionBudget"]
	if !matches(at(pdb, "spec.selector.matchLabels"), podLabels) {
		t.Error("PDB: selector does not match the pods")
	}
	if n := num(pdb, "spec.minAvailable"); n < 1 || n >= minR {
		t.Errorf("PDB: minAvailable %d must be at least 1 and below the HPA's minReplicas %d (or no node can ever drain)", n, minR)
	}

	np := m["NetworkPolicy"]
	if !matches(at(np, "spec.podSelector.matchLabels"), podLabels) {
		t.Error("NetworkPolicy: podSelector does not match the pods")
	}
	types, _ := at(np, "spec.policyTypes").([]any)
	if !slices.Contains(types, any("Ingress")) || !slices.Contains(types, any("Egress")) {
		t.Error("NetworkPolicy: must restrict both ingress and egress")
	}
	if _, ok := ports[str(np, "spec.ingress.0.ports.0.port")]; !ok {
		t.Error("NetworkPolicy: ingress is not to the container's port")
	}
	egress := map[int]bool{}
	for _, e := range at(np, "spec.egress").([]any) {
		for _, p := range at(e, "ports").([]any) {
			egress[num(p, "port")] = true
		}
	}
	for _, p := range []int{53, 5432, 6379} {
		if !egress[p] {
			t.Errorf("NetworkPolicy: no egress to port %d", p)
		}
	}
}

// stage is one FROM ... stage of the Containerfile.
type stage struct {
	from, name string
	lines      []string // instructions, continuation lines joined
}

func containerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		ins := cur.String()
		cur.Reset()
		if f := strings.Fields(ins); strings.EqualFold(f[0], "FROM") {
			st := stage{from: f[1]}
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Containerfile: %q before FROM", ins)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, ins)
	}
	return stages
}

var opencvModules = []string{"core", "imgproc", "imgcodecs", "dnn", "objdetect", "videoio", "highgui", "features2d", "calib3d", "photo", "video", "flann", "ml", "stitching"}

func TestContainerfile(t *testing.T) {
	stages := containerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	all := func(s stage) string { return strings.Join(s.lines, "\n") }
	if !strings.Contains(all(build), "go build") || !strings.Contains(all(build), "deploy/setup.sh") || !strings.Contains(all(build), "TRUSTID_SETUP_MODELS_ONLY=1") {
		t.Error("build stage: must build the binary and fetch the pinned models with deploy/setup.sh")
	}
	rt := all(run)
	if regexp.MustCompile(`\S+-dev\b`).MatchString(rt) || strings.Contains(rt, "golang") || strings.Contains(rt, "npm") {
		t.Error("runtime stage: development packages or tools")
	}
	for _, m := range opencvModules {
		if !strings.Contains(rt, "libopencv-"+m+"406") {
			t.Errorf("runtime stage: no libopencv-%s406", m)
		}
		if !strings.Contains(all(build), "libopencv-"+m+"-dev") {
			t.Errorf("build stage: no libopencv-%s-dev", m)
		}
	}
	if !strings.Contains(rt, "ffmpeg") {
		t.Error("runtime stage: no ffmpeg (the video demuxer)")
	}
	var user, entry string
	copies := 0
	for _, l := range run.lines {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = l
		case "COPY":
			if strings.HasPrefix(f[1], "--from="+build.name) {
				copies++
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("runtime stage: USER %q, want a non-root user", user)
	}
	if copies < 2 {
		t.Error("runtime stage: must copy the binary and the models from the build stage")
	}
	if !strings.Contains(entry, "trustid") {
		t.Errorf("runtime stage: ENTRYPOINT %q", entry)
	}
	// The models copied include ONNX Runtime, which setup.sh pins.
	sums, err := os.ReadFile("models.sha256")
	if err != nil || !strings.Contains(string(sums), "libonnxruntime.so") {
		t.Errorf("models.sha256 does not pin libonnxruntime.so: %v", err)
	}
}

func TestCompose(t *testing.T) {
	c := docs(t, "compose.yaml")[0]
	for _, s := range []string{"postgres", "redis", "trustid"} {
		if at(c, "services."+s) == nil {
			t.Fatalf("compose: no service %s", s)
		}
	}
	tr := at(c, "services.trustid")
	if at(tr, "read_only") != true {
		t.Error("compose: trustid must run with a read-only root filesystem")
	}
	if tmpfs, _ := at(tr, "tmpfs").([]any); len(tmpfs) == 0 || !strings.HasPrefix(fmt.Sprint(tmpfs[0]), "/tmp") {
		t.Error("compose: trustid needs a tmpfs on /tmp")
	}
	if u, _, _ := strings.Cut(str(tr, "user"), ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("compose: trustid runs as %q", str(tr, "user"))
	}
	if df := str(tr, "build.dockerfile"); df != "deploy/Containerfile" {
		t.Errorf("compose: builds %q", df)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if str(tr, "depends_on."+dep+".condition") != "service_healthy" {
			t.Errorf("compose: trustid does not wait for a healthy %s", dep)
		}
		if at(c, "services."+dep+".healthcheck.test") == nil {
			t.Errorf("compose: %s has no healthcheck", dep)
		}
	}
	required := regexp.MustCompile(`^\$\{[A-Z_]+:\?[^}]*\}$`)
	for _, k := range []string{"TRUSTID_ENCRYPTION_KEYS", "TRUSTID_PRIMARY_KEY_ID", "TRUSTID_LOOKUP_KEY", "TRUSTID_ADMIN_TOKEN"} {
		if v := str(tr, "environment."+k); !required.MatchString(v) {
			t.Errorf("compose: %s = %q, want ${%s:?...} (a secret from the environment, required)", k, v, k)
		}
	}
}
