package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// flagPattern finds the long flags a deployment file passes.
var flagPattern = regexp.MustCompile(`--([a-z][a-z0-9.-]*)`)

// TestDeploymentFlags: every flag the systemd unit and the DaemonSet pass is
// one the binary accepts, so that a renamed flag breaks this test and not a
// fleet.
func TestDeploymentFlags(t *testing.T) {
	out, err := exec.Command(exporterBinary(t), "--help-long").CombinedOutput()
	if err != nil {
		t.Fatalf("--help-long: %v\n%s", err, out)
	}
	accepted := map[string]bool{}
	for _, m := range regexp.MustCompile(`--(\[no-\])?([a-z][a-z0-9.-]*)`).FindAllStringSubmatch(string(out), -1) {
		accepted[m[2]] = true
		if m[1] != "" {
			accepted["no-"+m[2]] = true
		}
	}
	for _, path := range []string{"../deploy/systemd/ipacct_exporter.service", "../deploy/kubernetes/daemonset.yaml"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, m := range flagPattern.FindAllStringSubmatch(line, -1) {
				n++
				if !accepted[m[1]] {
					t.Errorf("%s passes --%s, which the binary does not accept", path, m[1])
				}
			}
		}
		if n == 0 {
			t.Errorf("%s passes no flags: the test looked in the wrong place", path)
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, pointed
// at the binary the tests built.
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		netnstest.Skip(t, "systemd-analyze is not installed (Debian package systemd)")
	}
	data, err := os.ReadFile("../deploy/systemd/ipacct_exporter.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "ipacct_exporter.service")
	text := strings.ReplaceAll(string(data), "/usr/local/bin/ipacct_exporter", exporterBinary(t))
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
