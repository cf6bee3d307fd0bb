package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitDirectives parses a systemd unit file into section.key -> values.
func unitDirectives(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d %q: not key=value in a section", n, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestSystemdUnit checks the unit with systemd-analyze verify (against a
// real scepca binary) and that its hardening and its config file hold.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/scepca.service")
	if err != nil {
		t.Fatal(err)
	}
	d := unitDirectives(t, b)
	for key, want := range map[string]string{
		"Service.User": "scepca", "Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict",
		"Service.ProtectHome": "yes", "Service.PrivateTmp": "yes", "Service.PrivateDevices": "yes",
		"Service.CapabilityBoundingSet": "", "Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"Service.MemoryDenyWriteExecute": "yes", "Service.SystemCallArchitectures": "native",
		"Service.StateDirectory": "scepca", "Service.LoadCredential": "kek:/etc/scepca/kek", "Service.UMask": "0077",
		"Install.WantedBy": "multi-user.target",
	} {
		if got := d[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"Service.ExecStart", "Service.ExecStartPre"} {
		if len(d[key]) != 1 || !strings.Contains(d[key][0], "--kek-file ${CREDENTIALS_DIRECTORY}/kek") || !strings.Contains(d[key][0], "--config /etc/scepca/scepca.json") {
			t.Errorf("%s = %q: want the config file and the KEK credential", key, d[key])
		}
	}

	// The config file the unit names passes config check.
	cfg, err := os.ReadFile("systemd/scepca.json")
	if err != nil {
		t.Fatal(err)
	}
	configCheck(t, string(cfg))

	// systemd's own parser, with the binary where the unit expects it.
	analyze := requireTool(t, "systemd-analyze")
	bin := scepcaBinary(t)
	dir := t.TempDir()
	unit := bytes.ReplaceAll(b, []byte("/usr/local/bin/scepca"), []byte(bin))
	path := filepath.Join(dir, "scepca.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), analyze, "verify", "--man=no", path)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	var problems []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "scepca.service") {
			problems = append(problems, l)
		}
	}
	if err != nil || len(problems) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
