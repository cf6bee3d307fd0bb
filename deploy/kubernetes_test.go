package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests holds the typed objects of deploy/kubernetes.
type manifests struct {
	namespaces      []*corev1.Namespace
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	services        map[string]*corev1.Service
	statefulSets    []*appsv1.StatefulSet
	pdbs            []*policyv1.PodDisruptionBudget
	serviceMonitors []*monitoringv1.ServiceMonitor
	files           map[string][]string // file -> kinds in it
}

// kustomization is the part of kustomize's Kustomization these manifests
// use, decoded strictly so a typo in it fails too.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// splitYAML splits a multi-document YAML file.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// strict decodes one document into v, refusing unknown and duplicate fields.
func strict(t *testing.T, file string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %T: %v", file, v, err)
	}
}

// loadManifests decodes every YAML file of deploy/kubernetes into the
// Kubernetes API type its kind names.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, services: map[string]*corev1.Service{}, files: map[string][]string{}}
	paths, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(p)
		for _, doc := range splitYAML(b) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			m.files[name] = append(m.files[name], tm.Kind)
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				v := new(corev1.Namespace)
				strict(t, p, doc, v)
				m.namespaces = append(m.namespaces, v)
			case "v1 ConfigMap":
				v := new(corev1.ConfigMap)
				strict(t, p, doc, v)
				m.configMaps[v.Name] = v
			case "v1 Secret":
				v := new(corev1.Secret)
				strict(t, p, doc, v)
				m.secrets[v.Name] = v
			case "v1 Service":
				v := new(corev1.Service)
				strict(t, p, doc, v)
				m.services[v.Name] = v
			case "apps/v1 StatefulSet":
				v := new(appsv1.StatefulSet)
				strict(t, p, doc, v)
				m.statefulSets = append(m.statefulSets, v)
			case "policy/v1 PodDisruptionBudget":
				v := new(policyv1.PodDisruptionBudget)
				strict(t, p, doc, v)
				m.pdbs = append(m.pdbs, v)
			case "monitoring.coreos.com/v1 ServiceMonitor":
				v := new(monitoringv1.ServiceMonitor)
				strict(t, p, doc, v)
				m.serviceMonitors = append(m.serviceMonitors, v)
			case "kustomize.config.k8s.io/v1beta1 Kustomization":
				strict(t, p, doc, new(kustomization))
			default:
				t.Fatalf("%s: unexpected %s %s", p, tm.APIVersion, tm.Kind)
			}
		}
	}
	return m
}

// TestKustomization: kustomization.yaml lists every manifest but the
// example Secret (an apply must never overwrite the real one).
func TestKustomization(t *testing.T) {
	m := loadManifests(t)
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatal(err)
	}
	var want []string
	for f := range m.files {
		if f != "kustomization.yaml" && f != "secret.example.yaml" {
			want = append(want, f)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want %v", got, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != m.statefulSets[0].Spec.Template.Spec.Containers[0].Image {
		t.Errorf("kustomization images %+v do not rewrite the StatefulSet's image", k.Images)
	}
}

// TestStatefulSet checks the pod against what scepca and the restricted
// Pod Security Standard need, and every reference in it.
func TestStatefulSet(t *testing.T) {
	m := loadManifests(t)
	if len(m.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(m.statefulSets))
	}
	ss := m.statefulSets[0]
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1 (bbolt has one writer)", ss.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v (%v)", ss.Spec.Selector, ss.Spec.Template.Labels, err)
	}
	if h := m.services[ss.Spec.ServiceName]; h == nil || h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("serviceName %q is not a headless Service", ss.Spec.ServiceName)
	}
	pod := ss.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want non-root with RuntimeDefault seccomp", psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; scepca does not call the Kubernetes API")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v: want no privilege escalation, read-only root, all capabilities dropped", sc)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, probe := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS || ports[probe.HTTPGet.Port.String()] == 0 {
			t.Errorf("%s probe %+v: want HTTPS GET %s on a named container port", name, probe, want)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, pvc := range ss.Spec.VolumeClaimTemplates {
		volumes[pvc.Name] = corev1.Volume{Name: pvc.Name}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volumeMount %s names no volume or claim template", vm.Name)
		}
		mounts[vm.Name] = vm
	}
	if _, ok := mounts["data"]; !ok || len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Error("the data directory is not on a PersistentVolumeClaim")
	}
	if mounts["tls"].SubPath != "" {
		t.Error("the TLS Secret is mounted by subPath, which never sees a renewal")
	}
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			if m.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if v.Secret.SecretName == "scepca-secrets" {
				for _, it := range v.Secret.Items {
					if _, ok := m.secrets["scepca-secrets"].StringData[it.Key]; !ok {
						t.Errorf("volume %s: key %s is not in secret.example.yaml", v.Name, it.Key)
					}
				}
			}
		}
	}
	for _, e := range c.Env {
		if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
			if s := m.secrets[r.SecretKeyRef.Name]; s == nil || !hasKey(s, r.SecretKeyRef.Key) {
				t.Errorf("env %s: Secret %s has no key %s in secret.example.yaml", e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
			}
		}
	}
	for _, svc := range m.services {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
			t.Errorf("Service %s selects no scepca pod", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if ports[p.TargetPort.String()] == 0 {
				t.Errorf("Service %s port %s targets %q, not a container port", svc.Name, p.Name, p.TargetPort.String())
			}
		}
	}
}

func hasKey(s *corev1.Secret, k string) bool {
	_, a := s.StringData[k]
	_, b := s.Data[k]
	return a || b
}

// TestPodDisruptionBudget: it covers the scepca pod and lets a drain evict
// the single replica.
func TestPodDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(m.pdbs))
	}
	pdb := m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(m.statefulSets[0].Spec.Template.Labels)) {
		t.Errorf("PDB selector %v does not match the pod (%v)", pdb.Spec.Selector, err)
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
		t.Errorf("PDB maxUnavailable = %v: with one replica anything less blocks every drain", pdb.Spec.MaxUnavailable)
	}
}

// TestServiceMonitor: it scrapes a named port of a Service it selects, over
// TLS, at /metrics.
func TestServiceMonitor(t *testing.T) {
	m := loadManifests(t)
	if len(m.serviceMonitors) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(m.serviceMonitors))
	}
	sm := m.serviceMonitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range sm.Spec.Endpoints {
		found := false
		for _, svc := range m.services {
			if !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				found = found || p.Name == ep.Port
			}
		}
		if !found {
			t.Errorf("endpoint port %q is on no selected Service", ep.Port)
		}
		if ep.Path != "/metrics" || ep.Scheme == nil || *ep.Scheme != "https" || ep.TLSConfig == nil {
			t.Errorf("endpoint %+v: want https /metrics with a tlsConfig", ep)
		}
	}
}

// TestConfigMap: the scepca.json in the ConfigMap passes `scepca config
// check`, and its paths are where the StatefulSet mounts things.
func TestConfigMap(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["scepca-config"]
	if cm == nil {
		t.Fatal("no ConfigMap scepca-config")
	}
	raw := cm.Data["scepca.json"]
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("scepca.json: %v", err)
	}
	c := m.statefulSets[0].Spec.Template.Spec.Containers[0]
	mountOf := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mountOf[vm.Name] = vm.MountPath
	}
	for key, mount := range map[string]string{"tls-cert": "tls", "tls-key": "tls", "kek-file": "secrets", "data": "data"} {
		v, _ := cfg[key].(string)
		if v != mountOf[mount] && !strings.HasPrefix(v, mountOf[mount]+"/") {
			t.Errorf("scepca.json %s = %q, not under the %s mount %s", key, v, mount, mountOf[mount])
		}
	}
	if !slices.Contains(c.Args, "--config") || !slices.Contains(c.Args, mountOf["config"]) {
		t.Errorf("container args %v do not name the mounted config %s", c.Args, mountOf["config"])
	}
	configCheck(t, raw)
}
