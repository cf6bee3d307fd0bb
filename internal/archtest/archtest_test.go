package archtest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/scepca/scepca"

// layer is a top-level directory of the module and what its packages may
// import from the module. A package may always import its own subtree
// (store/bolt imports store, internal/cms imports internal/ber), except cmd,
// which nothing imports.
type layer struct {
	name      string
	mayImport []string
	why       string // the sentence of STYLE.md §1 the edge would break
}

// layers is STYLE.md §1: cmd → {scep, admin} → {challenge, attest, ca} →
// store, and internal/* under everything. A new top-level package must be
// added here; TestImportGraph fails until it is.
var layers = []layer{
	{"cmd", []string{"scep", "admin", "challenge", "attest", "ca", "store", "internal"},
		"cmd wires everything and nothing imports cmd"},
	{"scep", []string{"challenge", "attest", "ca", "store", "internal"},
		"scep and admin do not import each other or cmd"},
	{"admin", []string{"challenge", "attest", "ca", "store", "internal"},
		"scep and admin do not import each other or cmd"},
	{"challenge", []string{"attest", "ca", "store", "internal"},
		"challenge, attest and ca import neither scep nor admin"},
	{"attest", []string{"challenge", "ca", "store", "internal"},
		"challenge, attest and ca import neither scep nor admin"},
	{"ca", []string{"challenge", "attest", "store", "internal"},
		"challenge, attest and ca import neither scep nor admin"},
	{"store", []string{"internal"},
		"store imports none of scepca's other packages"},
	{"internal", nil,
		"internal/* imports none of scepca's packages except internal/*"},
}

// layerOf returns the top-level directory of a module package ("store" for
// github.com/scepca/scepca/store/bolt), and false for a path outside the
// module.
func layerOf(pkg string) (string, bool) {
	rest, ok := strings.CutPrefix(pkg, module)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "/")
	top, _, _ := strings.Cut(rest, "/")
	return top, true
}

// check returns an error naming the edge when from must not import to; it
// ignores imports from outside the module.
func check(from, to string) error {
	toLayer, ok := layerOf(to)
	if !ok {
		return nil
	}
	fromLayer, _ := layerOf(from)
	i := slices.IndexFunc(layers, func(l layer) bool { return l.name == fromLayer })
	if i < 0 {
		return fmt.Errorf("%s is in no layer: add its top-level directory %q to the layers table of internal/archtest", from, fromLayer)
	}
	l := layers[i]
	switch {
	case toLayer == "cmd":
		return fmt.Errorf("upward import %s → %s: nothing imports cmd (STYLE.md §1)", from, to)
	case toLayer == fromLayer, slices.Contains(l.mayImport, toLayer):
		return nil
	}
	may := l.name + "/* may import no other layer"
	if len(l.mayImport) > 0 {
		may = l.name + "/* may import only its own subtree and " + strings.Join(l.mayImport, ", ")
	}
	return fmt.Errorf("upward import %s → %s: %s; %s (STYLE.md §1)", from, to, may, l.why)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	const m = module + "/"
	tests := []struct {
		name     string
		from, to string
		wantErr  bool
	}{
		{"cmd imports scep", m + "cmd/scepca", m + "scep", false},
		{"cmd imports store backend", m + "cmd/scepca", m + "store/bolt", false},
		{"scep imports ca", m + "scep", m + "ca", false},
		{"admin imports challenge", m + "admin", m + "challenge", false},
		{"backend imports store", m + "store/bolt", m + "store", false},
		{"subpackage imports parent", m + "challenge/intune", m + "challenge", false},
		{"store imports internal", m + "store/storetest", m + "internal/testpki", false},
		{"internal imports internal", m + "internal/cms", m + "internal/ber", false},
		{"standard library", m + "store", "context", false},
		{"third party", m + "store/bolt", "go.etcd.io/bbolt", false},
		{"prefix is not the module", m + "store", module + "x/store", false},
		{"store imports ca", m + "store", m + "ca", true},
		{"backend imports scep", m + "store/bolt", m + "scep", true},
		{"admin imports scep", m + "admin", m + "scep", true},
		{"scep imports admin", m + "scep", m + "admin", true},
		{"ca imports scep", m + "ca", m + "scep", true},
		{"challenge subpackage imports admin", m + "challenge/intune", m + "admin", true},
		{"attest imports admin", m + "attest/tpm", m + "admin", true},
		{"internal imports store", m + "internal/reqlog", m + "store", true},
		{"anyone imports cmd", m + "admin", m + "cmd/scepca", true},
		{"cmd imports cmd", m + "cmd/scepca", m + "cmd/other", true},
		{"unknown layer", m + "web", m + "store", true},
		{"module root package", module, m + "store", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := check(tc.from, tc.to)
			if (err != nil) != tc.wantErr {
				t.Errorf("check(%q, %q) = %v, want error: %v", tc.from, tc.to, err, tc.wantErr)
			}
		})
	}
}

// pkg is the part of `go list -json` output the test reads. Imports holds
// only the non-test imports of the package.
type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages runs `go list` over every package of the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("LookPath(%q) = %v, want the go command (go test puts it on PATH)", "go", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-json=ImportPath,Imports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s/... = %v, want nil\n%s", module, err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportGraph fails on every upward edge between scepca's packages
// (test files excluded: they may wire real parts from above).
func TestImportGraph(t *testing.T) {
	t.Parallel()
	pkgs := listPackages(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
		for _, imp := range p.Imports {
			if err := check(p.ImportPath, imp); err != nil {
				t.Error(err)
			}
		}
		// A package that imports nothing of ours still has to sit in a layer.
		if top, _ := layerOf(p.ImportPath); !slices.ContainsFunc(layers, func(l layer) bool { return l.name == top }) {
			t.Errorf("%s is in no layer: add its top-level directory %q to the layers table of internal/archtest", p.ImportPath, top)
		}
	}
	// Guard against a vacuous pass (wrong pattern, empty output).
	for _, want := range []string{"store", "store/bolt", "ca", "scep", "admin", "cmd/scepca"} {
		if !seen[module+"/"+want] {
			t.Errorf("go list %s/... did not list %s/%s; the graph check saw %d packages", module, module, want, len(pkgs))
		}
	}
}
