package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// healYAML is the seed's rules with a per-address set of the seed's IPv4
// local address.
const healYAML = netnstest.SeedYAML + `
addresses:
  - tag: tenant
    networks: [192.0.2.0/24]
    size: 100
`

// sortedLines is an nft listing's lines in order: a repair makes what was
// missing again at the end of the table, in another order.
func sortedLines(listing string) string {
	lines := strings.Split(listing, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// metricValue scrapes the exporter and returns a sample, failing the test
// when it is missing.
func (e *runningExporter) metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	_, fams := e.scrape(t)
	v, ok := value(fams, name, labels)
	if !ok {
		t.Fatalf("no %s%v on /metrics", name, labels)
	}
	return v
}

// waitRepairs waits until the exporter has counted n repairs.
func (e *runningExporter) waitRepairs(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for e.metricValue(t, "ipacct_config_repairs_total", nil) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %v repairs after 15s:\n%s", n, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seedTagBytes is what each tag series of the seed's rules counts of the
// seed traffic.
func seedTagBytes(sent map[string]netnstest.Counter) map[[2]string]uint64 {
	return map[[2]string]uint64{
		{"web4", "in"}: sent["=web4_down="].Bytes, {"web4", "out"}: sent["=web4_up="].Bytes,
		{"unauthssh", "in"}: sent["=unauthssh="].Bytes,
		{"web6", "in"}:      sent["=web6_down="].Bytes, {"web6", "out"}: sent["=web6_up="].Bytes,
		{"web6ssl", "in"}: sent["=web6ssl_down="].Bytes, {"web6ssl", "out"}: sent["=web6ssl_up="].Bytes,
	}
}

// TestManagedTableRepairs damages the running exporter's table as other
// programs do: each time the table is back within seconds as it was, the
// repair is logged and counted, everything outside the table is as the
// damage left it, and the traffic after the repair is counted exactly.
func TestManagedTableRepairs(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-nft", "iptables-legacy", "iptables-legacy-save")
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, ns *netnstest.NS, e *runningExporter, rules string)
	}{
		{"nft flush ruleset", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			ns.Run("nft", "flush", "ruleset")
		}},
		{"nft -f of a file that starts with flush ruleset", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			// Debian's /etc/nftables.conf, as systemctl reload nftables loads it.
			conf := writeFile(t, t.TempDir(), "nftables.conf", "#!/usr/sbin/nft -f\n\nflush ruleset\n\n"+netnstest.FirewallNFT)
			ns.Run("nft", "-f", conf)
		}},
		{"nft delete table", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			ns.Run("nft", "delete", "table", "inet", "ipacct")
		}},
		{"one chain deleted", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			// A chain that is jumped to goes only with its jumps.
			chain := chainNamed(t, ns, "web4_in-")
			ns.NFT("flush chain inet ipacct input\ndelete chain inet ipacct " + chain + "\n")
		}},
		{"one set deleted", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			set := chainNamed(t, ns, "addr_tenant_ipv4_in-")[len("addr_"):]
			ns.NFT("flush chain inet ipacct addr_" + set + "\ndelete set inet ipacct " + set + "\n")
		}},
		{"one rule deleted", func(t *testing.T, ns *netnstest.NS, _ *runningExporter, _ string) {
			chain := chainNamed(t, ns, "web4_in-")
			ns.Run("nft", "delete", "rule", "inet", "ipacct", chain, "handle", ruleHandle(t, ns, chain))
		}},
		{"ipacct_exporter cleanup", func(t *testing.T, ns *netnstest.NS, e *runningExporter, rules string) {
			out, err := exec.Command(exporterBinary(t), "cleanup", "--netns="+ns.Path(), "--config.file="+rules).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "deleted table inet ipacct") ||
				!strings.Contains(string(out), fmt.Sprintf("a running ipacct_exporter manages table inet ipacct (PID %d, --config.file %s)", e.cmd.Process.Pid, rules)) {
				t.Errorf("cleanup: %v\n%s", err, out)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := netnstest.New(t, netnstest.SeedAddrs...)
			ns.Firewall()
			rules := writeFile(t, t.TempDir(), "rules.yaml", healYAML)
			e := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+rules, "--no-collector.iptables")
			table := sortedLines(ns.Run("nft", "-s", "list", "table", "inet", "ipacct"))
			legacy := ns.LegacySave()
			// At start the exporter checks its table for changes it could
			// not have seen, after the settle time (100 ms). A damage inside
			// that window is repaired by that check, which cannot say who
			// made it: damage after it, as the log line is what is tested.
			time.Sleep(500 * time.Millisecond)

			start := time.Now()
			c.damage(t, ns, e, rules)
			others := ns.RulesetWithout("ipacct")
			e.waitRepairs(t, 1)
			t.Logf("repaired within %s of the damage", time.Since(start).Round(time.Millisecond))

			if got := sortedLines(ns.Run("nft", "-s", "list", "table", "inet", "ipacct")); got != table {
				t.Errorf("the repaired table differs:\n%s\nwant\n%s", got, table)
			}
			if got := ns.RulesetWithout("ipacct"); got != others {
				t.Errorf("the repair changed other tables:\nbefore\n%s\nafter\n%s", others, got)
			}
			if got := ns.LegacySave(); got != legacy {
				t.Errorf("iptables-legacy changed:\nbefore\n%s\nafter\n%s", legacy, got)
			}
			logs := e.logs.WaitFor("repaired the managed table", 5*time.Second)
			if n := strings.Count(logs, "repaired the managed table"); n != 1 || !strings.Contains(logs, "changed_by=") {
				t.Errorf("%d repair lines, want one that names who changed the table:\n%s", n, logs)
			}
			if v := e.metricValue(t, "ipacct_config_last_reload_successful", nil); v != 1 {
				t.Errorf("ipacct_config_last_reload_successful %v after a repair", v)
			}

			// No traffic before the damage: the counts after the repair are
			// exactly the traffic after it, in the kernel and on /metrics.
			sent := ns.SendSeedTraffic()
			_, fams := e.scrape(t)
			kernel := ns.NFTCounters()
			for k, want := range seedTagBytes(sent) {
				tok := "=" + k[0] + "_" + k[1] + "="
				got, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": k[0], "direction": k[1]})
				if kernel[tok].Bytes != want || !ok || uint64(got) != want {
					t.Errorf("%s %s: kernel %d, /metrics %v (present %v), sent %d", k[0], k[1], kernel[tok].Bytes, got, ok, want)
				}
			}
			// The tenant's addresses came back into new sets: new series,
			// served at 0 first so that Prometheus counts their first
			// burst (docs/counters.md), then at their counts.
			if v, ok := value(fams, "ipacct_ip_bytes_total", map[string]string{"ip": "192.0.2.1"}); ok && v != 0 {
				t.Errorf("an address back after the repair is served at %v first, want 0", v)
			}
			_, fams = e.scrape(t)
			checkTenant(t, ns, fams, sent)
			if n := e.metricValue(t, "ipacct_config_repairs_total", nil); n != 1 {
				t.Errorf("%v repairs for one damage", n)
			}
		})
	}
}

// checkTenant checks the per-address counts of 192.0.2.1 against the seed
// traffic, in the kernel and on /metrics.
func checkTenant(t *testing.T, ns *netnstest.NS, fams map[string]*dto.MetricFamily, sent map[string]netnstest.Counter) {
	t.Helper()
	kernel := ns.NFTSetCounters()
	for dir, want := range map[string]uint64{
		"in":  sent["=unauthssh="].Add(sent["=web4_down="]).Add(sent["=q_in="]).Bytes,
		"out": sent["=web4_up="].Bytes,
	} {
		got, ok := value(fams, "ipacct_ip_bytes_total", map[string]string{"tag": "tenant", "ip": "192.0.2.1", "direction": dir})
		if k := kernel["=tenant_"+dir+"= 192.0.2.1"].Bytes; k != want || !ok || uint64(got) != want {
			t.Errorf("tenant 192.0.2.1 %s: kernel %d, /metrics %v (present %v), sent %d", dir, k, got, ok, want)
		}
	}
}

// chainNamed returns the name of the managed table's chain that starts
// with prefix.
func chainNamed(t *testing.T, ns *netnstest.NS, prefix string) string {
	t.Helper()
	for _, f := range strings.Fields(ns.Run("nft", "list", "chains", "inet")) {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	t.Fatalf("no chain %s… in table inet ipacct", prefix)
	return ""
}

// ruleHandle returns the handle of the chain's first rule.
func ruleHandle(t *testing.T, ns *netnstest.NS, chain string) string {
	t.Helper()
	for _, line := range strings.Split(ns.Run("nft", "-a", "list", "chain", "inet", "ipacct", chain), "\n") {
		if _, h, ok := strings.Cut(line, "# handle "); ok && strings.Contains(line, "counter") {
			return strings.TrimSpace(h)
		}
	}
	t.Fatalf("no rule in chain %s", chain)
	return ""
}

// TestManagedTableRepairIncrease: Prometheus' increase() over a repair is
// the traffic sent after it. A repaired chain starts its counters again, and
// the traffic after the repair is more than before it, so that only
// counters the exporter keeps monotonic across the repair (issue 14) give
// the right increase: cur-prev when cur >= prev, else cur.
func TestManagedTableRepairIncrease(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	for name, damage := range map[string]func(ns *netnstest.NS){
		"table deleted": func(ns *netnstest.NS) { ns.Run("nft", "delete", "table", "inet", "ipacct") },
		"one rule deleted": func(ns *netnstest.NS) {
			chain := chainNamed(t, ns, "web4_in-")
			ns.Run("nft", "delete", "rule", "inet", "ipacct", chain, "handle", ruleHandle(t, ns, chain))
		},
	} {
		t.Run(name, func(t *testing.T) {
			ns := netnstest.New(t, netnstest.SeedAddrs...)
			rules := writeFile(t, t.TempDir(), "rules.yaml", netnstest.SeedYAML)
			e := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+rules, "--no-collector.iptables")
			// Every scrape is looked at as Prometheus would, the ones
			// while the table is gone and repaired included.
			p := newPromView(t, e)
			p.step("start", nil)
			p.step("before the damage", inetTagBytes(ns.SendSeedTraffic()))
			damage(ns)
			deadline := time.Now().Add(15 * time.Second)
			for {
				fams := p.step("while repairing", nil)
				if n, _ := value(fams, "ipacct_config_repairs_total", nil); n >= 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no repair after 15s:\n%s", e.logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			after := inetTagBytes(ns.SendSeedTraffic())
			for k, v := range inetTagBytes(ns.SendSeedTraffic()) {
				after[k] += v
			}
			p.step("after the repair", after)
		})
	}
}

// inetTagBytes is seedTagBytes keyed as promView keys the managed table's
// series.
func inetTagBytes(sent map[string]netnstest.Counter) map[string]uint64 {
	m := map[string]uint64{}
	for k, v := range seedTagBytes(sent) {
		m[k[0]+"/"+k[1]+"/inet"] = v
	}
	return m
}

// TestOneOwner: a second exporter on the same table and namespace refuses
// to start, names the first, and leaves its table alone; once the first is
// killed, a new one starts.
func TestOneOwner(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	dir := t.TempDir()
	first := writeFile(t, dir, "first.yaml", netnstest.SeedYAML)
	second := writeFile(t, dir, "second.yaml", strings.Replace(netnstest.SeedYAML, "ports: [22]", "ports: [2222]", 1))
	a := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+first, "--no-collector.iptables")
	listing := ns.Run("nft", "-a", "list", "ruleset")

	cmd := exec.Command(exporterBinary(t), "--netns="+ns.Path(), "--config.file="+second, "--web.listen-address="+exetest.FreeAddr(t), "--no-collector.iptables")
	out, err := runWithin(t, cmd, 15*time.Second)
	want := fmt.Sprintf("managed by another ipacct_exporter (PID %d, --config.file %s;", a.cmd.Process.Pid, first)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(out, want) {
		t.Errorf("the second exporter: %v, want a failure naming the first (%s):\n%s", err, want, out)
	}
	if got := ns.Run("nft", "-a", "list", "ruleset"); got != listing {
		t.Errorf("the second exporter changed the first's table:\nbefore\n%s\nafter\n%s", listing, got)
	}
	if v := a.metricValue(t, "ipacct_config_repairs_total", nil); v != 0 {
		t.Errorf("the first exporter repaired its table %v times", v)
	}

	// A SIGKILL leaves the claim's file, but not its lock.
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.cmd.Wait()
	claims, _ := filepath.Glob(filepath.Join("/run/ipacct_exporter", "net-*.inet-ipacct.lock"))
	c := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+second, "--no-collector.iptables")
	if !strings.Contains(ns.Run("nft", "list", "ruleset"), "dport 2222") {
		t.Errorf("the new exporter did not apply its file:\n%s", c.logs.String())
	}
	t.Logf("claims left by SIGKILLed exporters: %d", len(claims))
}

// runWithin runs cmd and returns its output, failing the test if it does
// not end within timeout.
func runWithin(t *testing.T, cmd *exec.Cmd, timeout time.Duration) (string, error) {
	t.Helper()
	logs := &exetest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return logs.String(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s still runs after %s:\n%s", cmd.Path, timeout, logs.String())
		return "", nil
	}
}

// TestReloadLifecycle: POST /-/reload works only with
// --web.enable-lifecycle, and never for a page on another site; SIGHUP
// always does.
func TestReloadLifecycle(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	rules := writeFile(t, t.TempDir(), "rules.yaml", netnstest.SeedYAML)
	changed := strings.Replace(netnstest.SeedYAML, "ports: [22]", "ports: [2222]", 1)
	applied := func() bool { return strings.Contains(ns.Run("nft", "list", "ruleset"), "dport 2222") }

	e := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+rules, "--no-collector.iptables")
	writeFile(t, filepath.Dir(rules), "rules.yaml", changed)
	if code := post(t, e.url+"/-/reload", nil); code != http.StatusForbidden || applied() {
		t.Errorf("POST /-/reload without --web.enable-lifecycle: %d, applied %v", code, applied())
	}
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !applied() {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload:\n%s", e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	on := startExporter(t, nil, "--netns="+netnstest.New(t).Path(), "--config.file="+rules, "--no-collector.iptables", "--web.enable-lifecycle")
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
		{"Sec-Fetch-Site": "cross-site", "Content-Type": "multipart/form-data; boundary=x"},
	} {
		if code := post(t, on.url+"/-/reload", h); code != http.StatusForbidden {
			t.Errorf("a cross-origin POST %v: %d", h, code)
		}
	}
	if strings.Count(on.logs.String(), "rules.yaml applied") != 1 {
		t.Errorf("a cross-origin POST reloaded:\n%s", on.logs.String())
	}
	if code := post(t, on.url+"/-/reload", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusOK {
		t.Errorf("POST /-/reload with --web.enable-lifecycle: %d", code)
	}
	if code := post(t, on.url+"/-/reload", nil); code != http.StatusOK {
		t.Errorf("POST /-/reload from a tool (no browser headers): %d", code)
	}
}

// post sends an empty POST with the headers and returns the status.
func post(t *testing.T, url string, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRulesFileThatBlocks: rules.yaml replaced by a FIFO, then by a
// directory, and reloaded: each reload fails at once and says why, scrapes
// and reloads go on answering, and SIGTERM stops the exporter.
func TestRulesFileThatBlocks(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", netnstest.SeedYAML)
	e := startExporter(t, nil, "--netns="+ns.Path(), "--config.file="+rules, "--no-collector.iptables", "--web.enable-lifecycle")
	client := &http.Client{Timeout: 5 * time.Second}
	for kind, replace := range map[string]func() error{
		"a FIFO":      func() error { return syscall.Mkfifo(rules, 0o644) },
		"a directory": func() error { return os.Mkdir(rules, 0o755) },
	} {
		if err := os.RemoveAll(rules); err != nil {
			t.Fatal(err)
		}
		if err := replace(); err != nil {
			t.Fatal(err)
		}
		if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e.logs.WaitFor("is "+kind+", not a regular file", 5*time.Second)
		for i := 0; i < 2; i++ {
			scrapeWith(t, client, e.url)
		}
		resp, err := client.Post(e.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatalf("POST /-/reload with %s as rules.yaml: %v", kind, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("POST /-/reload with %s as rules.yaml: %d", kind, resp.StatusCode)
		}
		// The log line comes through a pipe, maybe after the answer.
		line := rules + ": is " + kind + ", not a regular file"
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(e.logs.String(), line) < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := strings.Count(e.logs.String(), line); n != 2 {
			t.Errorf("%d log lines say that rules.yaml is %s, want 2 (SIGHUP and POST):\n%s", n, kind, e.logs.String())
		}
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("SIGTERM did not stop the exporter")
	}
}
