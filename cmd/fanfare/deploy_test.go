package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// partFlags runs `fanfare serve <part> -h` and returns the flags it lists.
func partFlags(t *testing.T, part string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", part, "-h")
	cmd.Env = append(os.Environ(), "FANFARE_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stderr, cmd.Stdout = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("serve %s -h: %v\n%s", part, err, out.String())
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) == 0 {
		t.Fatalf("serve %s -h lists no flags:\n%s", part, out.String())
	}
	return flags
}

// checkEnv fails for every variable that is not FANFARE_<flag> of part, and
// for a required flag without a variable.
func checkEnv(t *testing.T, where, part string, env map[string]string, flags []string) {
	t.Helper()
	for name := range env {
		flag, ok := strings.CutPrefix(name, "FANFARE_")
		if !ok || !slices.Contains(flags, strings.ReplaceAll(strings.ToLower(flag), "_", "-")) {
			t.Errorf("%s: %s is not a flag of `fanfare serve %s` (flags: %s)", where, name, part, strings.Join(flags, ", "))
		}
	}
	required := []string{"FANFARE_EVENTSTORE_URL", "FANFARE_KAFKA_BROKERS", "FANFARE_DATA_DIR", "FANFARE_LISTEN"}
	if part == "gateway" {
		required = []string{"FANFARE_KRATOS_URL", "FANFARE_ROUTES", "FANFARE_DATA_DIR", "FANFARE_LISTEN"}
	}
	for _, r := range required {
		if env[r] == "" {
			t.Errorf("%s: %s is not set", where, r)
		}
	}
	if part == "gateway" {
		for _, svc := range []string{"accounts", "songs", "chains", "plays", "tipping", "escrow", "reports"} {
			if !strings.Contains(env["FANFARE_ROUTES"], svc+"=http") {
				t.Errorf("%s: FANFARE_ROUTES does not route %s", where, svc)
			}
		}
	}
}

// scaledParts are what run as containers: every serve part but the
// embedded broker and event store (real Kafka and KurrentDB instead).
func scaledParts() []string {
	parts := []string{"forwarder", "gateway"}
	for _, s := range partSpecs {
		parts = append(parts, s.name)
	}
	return parts
}

// TestDeployManifestsMatchTheFlags parses deploy/compose/compose.yaml and
// deploy/k8s/fanfare.yaml (they cannot run here) and checks that every part
// is deployed, configured only through variables that are its flags, with
// every required one set; in Kubernetes each part also has a
// PodDisruptionBudget, and each Kafka consumer an autoscaler on consumer lag.
func TestDeployManifestsMatchTheFlags(t *testing.T) {
	flags := map[string][]string{}
	for _, p := range scaledParts() {
		flags[p] = partFlags(t, p)
	}

	// Compose.
	b, err := os.ReadFile("../../deploy/compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     any               `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	seen := map[string]bool{}
	kafka, kurrent := 0, 0
	for name, s := range compose.Services {
		switch {
		case strings.HasPrefix(s.Image, "apache/kafka"):
			kafka++
			continue
		case strings.Contains(s.Image, "kurrentdb"):
			kurrent++
			continue
		}
		cmd, _ := s.Command.([]any)
		if len(cmd) != 2 || cmd[0] != "serve" {
			continue
		}
		part, _ := cmd[1].(string)
		if flags[part] == nil {
			t.Errorf("compose service %s runs unknown part %q", name, part)
			continue
		}
		seen[part] = true
		checkEnv(t, "compose "+name, part, s.Environment, flags[part])
	}
	if kafka != 3 || kurrent != 3 || compose.Services["kratos"].Image == "" || compose.Services["postgres"].Image == "" {
		t.Errorf("compose: %d kafka brokers, %d KurrentDB nodes, kratos %q, postgres %q; want 3, 3 and both", kafka, kurrent,
			compose.Services["kratos"].Image, compose.Services["postgres"].Image)
	}
	for _, p := range scaledParts() {
		if !seen[p] {
			t.Errorf("compose runs no %s", p)
		}
	}

	// Kubernetes.
	f, err := os.Open("../../deploy/k8s/fanfare.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type envVar struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
		From  any    `yaml:"valueFrom"`
	}
	type doc struct {
		Kind     string                `yaml:"kind"`
		Metadata struct{ Name string } `yaml:"metadata"`
		Data     map[string]string     `yaml:"data"`
		Spec     struct {
			ScaleTargetRef struct{ Name string } `yaml:"scaleTargetRef"`
			Metrics        []struct {
				External struct {
					Metric struct{ Name string } `yaml:"metric"`
				} `yaml:"external"`
			} `yaml:"metrics"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Spec struct {
					Containers []struct {
						Args    []string `yaml:"args"`
						Env     []envVar `yaml:"env"`
						EnvFrom []struct {
							ConfigMapRef struct{ Name string } `yaml:"configMapRef"`
						} `yaml:"envFrom"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var docs []doc
	dec := yaml.NewDecoder(f)
	for {
		var d doc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("fanfare.yaml: %v", err)
		}
		docs = append(docs, d)
	}
	configMaps := map[string]map[string]string{}
	pdb, hpa := map[string]bool{}, map[string]bool{}
	for _, d := range docs {
		switch d.Kind {
		case "ConfigMap":
			configMaps[d.Metadata.Name] = d.Data
		case "PodDisruptionBudget":
			pdb[d.Spec.Selector.MatchLabels["app.kubernetes.io/component"]] = true
		case "HorizontalPodAutoscaler":
			if len(d.Spec.Metrics) == 1 && d.Spec.Metrics[0].External.Metric.Name == "fanfare_consumer_lag" {
				hpa[strings.TrimPrefix(d.Spec.ScaleTargetRef.Name, "fanfare-")] = true
			}
		}
	}
	deployed := map[string]bool{}
	for _, d := range docs {
		if d.Kind != "Deployment" {
			continue
		}
		c := d.Spec.Template.Spec.Containers
		if len(c) != 1 || len(c[0].Args) != 2 || c[0].Args[0] != "serve" || flags[c[0].Args[1]] == nil {
			t.Errorf("deployment %s does not run `serve <part>`: %+v", d.Metadata.Name, c)
			continue
		}
		part := c[0].Args[1]
		deployed[part] = true
		env := map[string]string{}
		for _, from := range c[0].EnvFrom {
			cm, ok := configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("deployment %s: no ConfigMap %q", d.Metadata.Name, from.ConfigMapRef.Name)
			}
			for k, v := range cm {
				env[k] = v
			}
		}
		for _, e := range c[0].Env {
			env[e.Name] = e.Value
			if e.From != nil {
				env[e.Name] = "(from the pod)"
			}
		}
		checkEnv(t, "k8s "+d.Metadata.Name, part, env, flags[part])
	}
	for _, p := range scaledParts() {
		if !deployed[p] || !pdb[p] {
			t.Errorf("k8s: %s deployed %v, disruption budget %v", p, deployed[p], pdb[p])
		}
		if consumes := p != "gateway" && p != "forwarder"; consumes != hpa[p] {
			t.Errorf("k8s: %s consumes Kafka %v, autoscaled on lag %v", p, consumes, hpa[p])
		}
	}
}

// TestDockerfileBuildsTheImageTheManifestsRun: deploy/Dockerfile cannot be
// built here (no Docker), so check what can go stale: its Go matches
// go.mod's, it builds this command, its entrypoint is the binary it
// copies, and it is tagged as the image the manifests run.
func TestDockerfileBuildsTheImageTheManifestsRun(t *testing.T) {
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goVersion string
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			parts := strings.Split(v, ".")
			goVersion = parts[0] + "." + parts[1]
		}
	}
	for _, want := range []string{
		"FROM golang:" + goVersion + " AS build",
		"CGO_ENABLED=0 go build -trimpath -o /out/fanfare ./cmd/fanfare",
		"COPY --from=build /out/fanfare /usr/local/bin/fanfare",
		`ENTRYPOINT ["/usr/local/bin/fanfare"]`,
		"-t fanfare:dev .",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("deploy/Dockerfile lacks %q", want)
		}
	}
	for _, manifest := range []string{"../../deploy/compose/compose.yaml", "../../deploy/k8s/fanfare.yaml"} {
		m, err := os.ReadFile(manifest)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(m), "\n") {
			if img, ok := strings.CutPrefix(strings.TrimSpace(line), "image: fanfare"); ok && img != ":dev" {
				t.Errorf("%s runs fanfare%s, the Dockerfile builds fanfare:dev", manifest, img)
			}
		}
	}
}
