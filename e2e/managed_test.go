package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManagedRulesAndReload(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	path := writeFile(t, t.TempDir(), "rules.yaml", netnstest.SeedYAML)
	// The claim on the table, where this test alone looks.
	claims := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	e := startExporter(t, claims, "--netns="+ns.Path(), "--config.file="+path, "--no-collector.iptables", "--web.enable-lifecycle")
	if n := claimFiles(t, claims); n != 1 {
		t.Errorf("%d claim files while the exporter runs, want 1", n)
	}

	sent := ns.SendSeedTraffic()
	_, fams := e.scrape(t)
	check := func(when, tagName, dir string, want uint64) {
		t.Helper()
		_, fams := e.scrape(t)
		got, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": tagName, "direction": dir, "table_family": "inet"})
		if !ok || uint64(got) != want {
			t.Errorf("%s: %s %s = %v (present %v), want %d", when, tagName, dir, got, ok, want)
		}
	}
	check("after start", "web4", "in", sent["=web4_down="].Bytes)
	check("after start", "web4", "out", sent["=web4_up="].Bytes)
	check("after start", "unauthssh", "in", sent["=unauthssh="].Bytes)
	if v, _ := value(fams, "ipacct_config_last_reload_successful", nil); v != 1 {
		t.Errorf("reload gauge after a good start: %v", v)
	}

	// GET is not a reload.
	if resp, err := http.Get(e.url + "/-/reload"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %v %v", resp.StatusCode, err)
	}

	// A bad file: the reload fails, the old rules go on counting.
	writeFile(t, filepath.Dir(path), "rules.yaml", netnstest.SeedYAML+"    bogus: 1\n")
	resp, err := http.Post(e.url+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("POST /-/reload with a bad file: %v %v", resp.StatusCode, err)
	}
	more := ns.SendSeedTraffic()
	check("after a failed reload", "web4", "in", sent["=web4_down="].Bytes+more["=web4_down="].Bytes)
	_, fams = e.scrape(t)
	if v, _ := value(fams, "ipacct_config_last_reload_successful", nil); v != 0 {
		t.Errorf("reload gauge after a bad file: %v", v)
	}
	if !strings.Contains(e.logs.String(), "bogus") {
		t.Errorf("the log does not say why the reload failed:\n%s", e.logs.String())
	}

	// A good change by SIGHUP: unauthssh changes, web4 counts on.
	writeFile(t, filepath.Dir(path), "rules.yaml", strings.Replace(netnstest.SeedYAML, "ports: [22]", "ports: [2222]", 1))
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, fams = e.scrape(t)
		if v, _ := value(fams, "ipacct_config_last_reload_successful", nil); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	third := ns.SendSeedTraffic()
	check("after SIGHUP", "web4", "in", sent["=web4_down="].Bytes+more["=web4_down="].Bytes+third["=web4_down="].Bytes)
	// unauthssh is now port 2222, which saw nothing: its series keeps what
	// the old rule counted and grows no more (docs/counters.md).
	check("after SIGHUP", "unauthssh", "in", sent["=unauthssh="].Bytes+more["=unauthssh="].Bytes)

	// Stopping the exporter leaves the rules counting, and no claim;
	// cleanup removes the rules.
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	_ = e.cmd.Wait()
	if !strings.Contains(ns.Run("nft", "list", "tables"), "table inet ipacct") {
		t.Error("the managed table went away with the exporter")
	}
	if n := claimFiles(t, claims); n != 0 {
		t.Errorf("the stopped exporter left %d claim files", n)
	}
	cleanup := exec.Command(exporterBinary(t), "cleanup", "--netns="+ns.Path(), "--config.file="+path)
	cleanup.Env = append(os.Environ(), claims...)
	out, err := cleanup.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deleted table inet ipacct") {
		t.Errorf("cleanup: %v\n%s", err, out)
	}
	if strings.Contains(ns.Run("nft", "list", "tables"), "ipacct") {
		t.Error("cleanup left the table")
	}
	if n := claimFiles(t, claims); n != 0 {
		t.Errorf("cleanup left %d claim files", n)
	}
}

// claimFiles counts the claims on managed tables in the RUNTIME_DIRECTORY
// that env sets.
func claimFiles(t *testing.T, env []string) int {
	t.Helper()
	dir := strings.TrimPrefix(env[0], "RUNTIME_DIRECTORY=")
	files, err := filepath.Glob(filepath.Join(dir, "net-*.inet-*.lock"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func TestBadConfigAtStart(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	path := writeFile(t, t.TempDir(), "rules.yaml", strings.Replace(netnstest.SeedYAML, "192.0.2.1]", "192.0.2.300]", 1))
	cmd := exec.Command(exporterBinary(t), "--netns="+ns.Path(), "--config.file="+path, "--web.listen-address=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("started with a bad file: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), path+":5:") || !strings.Contains(string(out), "accounting[0].local[0]") {
		t.Errorf("the error does not name the file, line and field:\n%s", out)
	}
	if got := ns.Run("nft", "list", "ruleset"); got != "" {
		t.Errorf("something was applied:\n%s", got)
	}
}

func TestConfigCheckAndDryRun(t *testing.T) {
	bin := exporterBinary(t)
	out, err := exec.Command(bin, "--config.file=../rules.example.yaml", "--config.check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Errorf("--config.check on the example: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--config.file=../rules.example.yaml", "--config.dry-run").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "table inet ipacct {") || !strings.Contains(string(out), "counter comment") {
		t.Errorf("--config.dry-run: %v\n%s", err, out)
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", "accounting: []\n")
	out, err = exec.Command(bin, "--config.file="+bad, "--config.check").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), bad) {
		t.Errorf("--config.check on an empty file: %v\n%s", err, out)
	}
}

// TestExampleFileCounts applies rules.example.yaml itself and checks every
// tag on /metrics against the kernel, and the tags the test sends traffic
// for against that traffic.
func TestExampleFileCounts(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "198.51.100.10/32", "198.51.100.11/32", "198.51.100.12/32",
		"203.0.113.1/32", "203.0.113.2/32", "192.0.2.1/32", "2001:db8:f00d::1/128")
	e := startExporter(t, nil, "--netns="+ns.Path(), "--config.file=../rules.example.yaml", "--no-collector.iptables")

	a := ns.SendUDP("198.51.100.10:40000", "203.0.113.1:5000", 111, 3)
	b := ns.SendUDP("198.51.100.11:40001", "192.0.2.1:80", 222, 4)
	c := ns.SendUDP("203.0.113.2:7000", "198.51.100.12:7001", 333, 5)
	sent := map[string]uint64{
		"srv-198.51.100.10/out": a, "example.com/in": a,
		"srv-198.51.100.11/out": b,
		"example.net/out":       c,
	}

	_, fams := e.scrape(t)
	kernel := ns.NFTCounters()
	if len(kernel) < 35 {
		t.Fatalf("only %d tag tokens in the kernel; the example did not apply", len(kernel))
	}
	for tok, k := range kernel {
		// A tag may hold '_': the direction follows the last one.
		raw := strings.Trim(tok, "=")
		i := strings.LastIndex(raw, "_")
		if i < 0 {
			t.Fatalf("managed comment without a direction: %s", tok)
		}
		name, dir := raw[:i], raw[i+1:]
		labels := map[string]string{"tag": name, "direction": dir, "table_family": "inet"}
		bytes, okb := value(fams, "ipacct_tag_bytes_total", labels)
		packets, okp := value(fams, "ipacct_tag_packets_total", labels)
		if !okb || !okp || uint64(bytes) != k.Bytes || uint64(packets) != k.Packets {
			t.Errorf("%s: /metrics %v bytes %v packets, kernel %+v", tok, bytes, packets, k)
		}
		if want := sent[name+"/"+dir]; k.Bytes != want {
			t.Errorf("%s: kernel counted %d bytes, the test sent %d that it matches", tok, k.Bytes, want)
		}
	}

	// Seed 000 per address: what each of the server's addresses sent.
	for ip, want := range map[string]uint64{"198.51.100.10": a, "198.51.100.11": b} {
		labels := map[string]string{"tag": "servers", "ip": ip, "direction": "out", "family": "ipv4"}
		if got, ok := value(fams, "ipacct_ip_bytes_total", labels); !ok || uint64(got) != want {
			t.Errorf("servers %s out: /metrics %v (present %v), sent %d", ip, got, ok, want)
		}
	}
	if _, ok := value(fams, "ipacct_ip_bytes_total", map[string]string{"ip": "198.51.100.12"}); ok {
		t.Error("198.51.100.12 sent nothing but has a series")
	}
	for _, tenant := range []string{"rent31", "rent3233", "rent34"} {
		if v, ok := value(fams, "ipacct_ip_addresses", map[string]string{"tag": tenant, "family": "ipv4", "direction": "in"}); !ok || v != 0 {
			t.Errorf("%s: %v addresses (present %v), want an empty set", tenant, v, ok)
		}
	}
}
