package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// These tests change the ruleset under a running exporter as operators do
// and check every series the way Prometheus reads it: the increase between
// two scrapes is cur-prev, or cur after a decrease (a reset). It must equal
// the bytes the kernel counted in between, which is the bytes the test sent.

// promView remembers the last value of the series it watches, as
// Prometheus would.
type promView struct {
	t    *testing.T
	e    *runningExporter
	last map[string]float64
}

func newPromView(t *testing.T, e *runningExporter) *promView {
	return &promView{t: t, e: e, last: map[string]float64{}}
}

// step scrapes and checks the increase of each named series since the
// last step against want. A series is "tag/direction/table_family" for
// ipacct_tag_bytes_total, or "ip/direction/address" for
// ipacct_ip_bytes_total. Series not in want must not have grown (or, new,
// must start at 0).
func (p *promView) step(what string, want map[string]uint64) map[string]*dto.MetricFamily {
	p.t.Helper()
	_, fams := p.e.scrape(p.t)
	now := map[string]float64{}
	for _, m := range fams["ipacct_tag_bytes_total"].GetMetric() {
		l := labelMap(m)
		now[l["tag"]+"/"+l["direction"]+"/"+l["table_family"]] = m.GetCounter().GetValue()
	}
	for _, m := range fams["ipacct_ip_bytes_total"].GetMetric() {
		l := labelMap(m)
		now["ip/"+l["direction"]+"/"+l["ip"]] = m.GetCounter().GetValue()
	}
	for k, v := range now {
		prev, seen := p.last[k]
		inc := v - prev // a new series: Prometheus does not count its first sample
		if !seen {
			inc = 0
		} else if v < prev {
			inc = v
		}
		if inc != float64(want[k]) {
			p.t.Errorf("%s: Prometheus' increase of %s is %v (%v → %v), want the %d bytes counted", what, k, inc, prev, v, want[k])
		}
		p.last[k] = v
	}
	for k := range want {
		if _, ok := now[k]; !ok {
			p.t.Errorf("%s: series %s not served", what, k)
		}
	}
	return fams
}

// svcRules is a ruleset of two rules of one tag, told apart by port.
const svcRules = `
table inet t {
	chain out {
		type filter hook output priority 0;
		udp dport 7001 counter comment "=svc_out= Service"
		udp dport 7002 counter comment "=svc_out= Service"
	}
}
`

// sender returns a function that sends count datagrams of payload bytes
// to a port of 192.0.2.1, in ns, and returns their IP bytes.
func sender(ns *netnstest.NS) func(port, payload, count int) uint64 {
	return func(port, payload, count int) uint64 {
		return ns.SendUDP("192.0.2.1:40000", fmt.Sprintf("192.0.2.1:%d", port), payload, count)
	}
}

func startOnNS(t *testing.T, ns *netnstest.NS, args ...string) *runningExporter {
	t.Helper()
	return startExporter(t, nil, append([]string{"--netns=" + ns.Path(), "--no-collector.iptables"}, args...)...)
}

// handleOf returns the nft handle of the rule in table inet t chain out
// whose text holds match.
func handleOf(t *testing.T, ns *netnstest.NS, match string) string {
	t.Helper()
	for _, line := range strings.Split(ns.Run("nft", "-a", "list", "chain", "inet", "t", "out"), "\n") {
		if strings.Contains(line, match) {
			if i := strings.LastIndex(line, "# handle "); i >= 0 {
				return strings.TrimSpace(line[i+len("# handle "):])
			}
		}
	}
	t.Fatalf("no rule with %q", match)
	return ""
}

func TestCountersThroughRulesetChanges(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24")
	ns.NFT(svcRules)
	send := sender(ns)
	send(7001, 1000, 5)
	send(7002, 500, 3)
	e := startOnNS(t, ns)
	p := newPromView(t, e)
	p.step("start", nil)

	a := send(7001, 100, 4)
	b := send(7002, 200, 2)
	p.step("both rules count", map[string]uint64{"svc/out/inet": a + b})

	// The whole ruleset loaded fresh, as systemctl reload nftables does:
	// every counter starts again; the series carries on.
	ns.NFT("flush ruleset\n" + svcRules)
	a = send(7001, 90, 3)
	p.step("the whole ruleset reloaded", map[string]uint64{"svc/out/inet": a})
	a, b = send(7001, 100, 4), send(7002, 200, 2)
	p.step("both rules count again", map[string]uint64{"svc/out/inet": a + b})

	ns.Run("nft", "delete", "rule", "inet", "t", "out", "handle", handleOf(t, ns, "7002"))
	a = send(7001, 300, 3)
	p.step("one of two rules deleted", map[string]uint64{"svc/out/inet": a})

	ns.Run("nft", "add", "rule", "inet", "t", "out", "udp", "dport", "7002", "counter", "comment", `"=svc_out= Service"`)
	b = send(7002, 50, 2)
	p.step("the rule added again", map[string]uint64{"svc/out/inet": b})

	h := handleOf(t, ns, "7001")
	ns.Run("nft", "replace", "rule", "inet", "t", "out", "handle", h, "udp", "dport", "7001", "counter", "comment", `"=svc_out= Service"`)
	a = send(7001, 20, 1)
	p.step("one rule replaced by an identical one", map[string]uint64{"svc/out/inet": a})

	a, b = send(7001, 1000, 5), send(7002, 1000, 5)
	p.step("both rules count a lot", map[string]uint64{"svc/out/inet": a + b})

	// Saved with counters; traffic after the save that a scrape reads; the
	// ruleset flushed and restored from the save: counters a little below
	// the ones last served. The restored counters carry on.
	saved := ns.Run("nft", "list", "ruleset")
	b = send(7002, 60, 1)
	p.step("traffic after the save", map[string]uint64{"svc/out/inet": b})
	ns.NFT("flush ruleset\n" + saved)
	p.step("ruleset restored from the save", nil)
	a, b = send(7001, 70, 2), send(7002, 80, 2)
	p.step("counting after the restore", map[string]uint64{"svc/out/inet": a + b})
}

// TestCountersZeroedIptables: iptables -Z on one of two chains, with
// iptables-nft and with iptables-legacy.
func TestCountersZeroedIptables(t *testing.T) {
	for _, tool := range []string{"iptables-nft", "iptables-legacy"} {
		t.Run(tool, func(t *testing.T) {
			netnstest.RequireRoot(t, tool)
			ns := netnstest.New(t, "192.0.2.1/24")
			for _, c := range []struct {
				chain string
				port  int
			}{{"ACCTA", 7001}, {"ACCTB", 7002}} {
				ns.Run(tool, "-N", c.chain)
				ns.Run(tool, "-A", "OUTPUT", "-j", c.chain)
				ns.Run(tool, "-A", c.chain, "-p", "udp", "--dport", fmt.Sprint(c.port), "-m", "comment", "--comment", "=svc_out=")
			}
			send := sender(ns)
			send(7001, 1000, 5)
			send(7002, 1000, 5)
			collector := "--no-collector.iptables"
			if tool == "iptables-legacy" {
				collector = "--collector.iptables"
			}
			e := startExporter(t, nil, "--netns="+ns.Path(), collector)
			p := newPromView(t, e)
			p.step("start", nil)
			ns.Run(tool, "-Z", "ACCTA")
			a := send(7001, 30, 2)
			b := send(7002, 40, 1)
			p.step("iptables -Z on one chain", map[string]uint64{"svc/out/ip": a + b})
			// iptables-restore without -c zeroes the table: every part at once.
			rules := ns.Run(tool+"-save", "-t", "filter")
			restore := exec.Command("ip", "netns", "exec", ns.Name, tool+"-restore")
			restore.Stdin = strings.NewReader(rules)
			if out, err := restore.CombinedOutput(); err != nil {
				t.Fatalf("%s-restore: %v: %s", tool, err, out)
			}
			a = send(7001, 25, 1)
			p.step("table restored without counters", map[string]uint64{"svc/out/ip": a})
			// iptables-restore -c of a save made now: the counters carry on.
			withCounters := ns.Run(tool+"-save", "-c", "-t", "filter")
			restore = exec.Command("ip", "netns", "exec", ns.Name, tool+"-restore", "-c")
			restore.Stdin = strings.NewReader(withCounters)
			if out, err := restore.CombinedOutput(); err != nil {
				t.Fatalf("%s-restore -c: %v: %s", tool, err, out)
			}
			b = send(7002, 35, 2)
			p.step("table restored with counters", map[string]uint64{"svc/out/ip": b})
		})
	}
}

// TestCountersNewAddressesAndTimeouts: addresses that appear and send a
// burst before their first scrape are counted; one address in two sets of
// a tag keeps its count when one element times out.
func TestCountersNewAddressesAndTimeouts(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24")
	ns.NFT(`
table inet t {
	set a { type ipv4_addr; flags dynamic, timeout; counter; comment "=rent_out= Tenant"; }
	set b { type ipv4_addr; flags dynamic, timeout; counter; comment "=rent_out= Tenant"; }
	chain out {
		type filter hook output priority 0;
		udp dport 7001 update @a { ip saddr timeout 1h }
		udp dport 7002 update @b { ip saddr timeout 3s }
	}
}
`)
	e := startOnNS(t, ns)
	p := newPromView(t, e)
	p.step("start, empty sets", nil)
	first := ns.SendUDP("192.0.2.2:40000", "192.0.2.1:7001", 700, 3)
	p.step("a new address, first scrape", nil) // served at 0
	p.step("a new address, second scrape", map[string]uint64{"ip/out/192.0.2.2": first})

	x := ns.SendUDP("192.0.2.3:40000", "192.0.2.1:7001", 100, 2)
	y := ns.SendUDP("192.0.2.3:40000", "192.0.2.1:7002", 300, 2)
	p.step("an address in two sets, first scrape", nil)
	p.step("an address in two sets", map[string]uint64{"ip/out/192.0.2.3": x + y})
	// b's element times out; a's goes on.
	deadline := time.Now().Add(15 * time.Second)
	for strings.Contains(ns.Run("nft", "list", "set", "inet", "t", "b"), "192.0.2.3") {
		if time.Now().After(deadline) {
			t.Fatal("the element of set b did not time out")
		}
		time.Sleep(200 * time.Millisecond)
	}
	x = ns.SendUDP("192.0.2.3:40000", "192.0.2.1:7001", 50, 1)
	p.step("one of its elements timed out", map[string]uint64{"ip/out/192.0.2.3": x})
}

// TestCountersAcrossRestart: the exporter restarted after a partial change,
// with the state file (exact) and without (a reset, as documented).
func TestCountersAcrossRestart(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24")
	ns.NFT(svcRules)
	send := sender(ns)
	send(7001, 1000, 5)
	send(7002, 1000, 5)
	state := filepath.Join(t.TempDir(), "state.json")
	e := startOnNS(t, ns, "--state.file="+state)
	p := newPromView(t, e)
	p.step("start", nil)
	ns.Run("nft", "delete", "rule", "inet", "t", "out", "handle", handleOf(t, ns, "7002"))
	a := send(7001, 100, 1)
	p.step("one rule deleted", map[string]uint64{"svc/out/inet": a})
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Wait(); err != nil {
		t.Fatalf("exporter exit: %v\n%s", err, e.logs.String())
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file after SIGTERM: %v %v", fi, err)
	}
	a = send(7001, 200, 2) // while it is down
	p.e = startOnNS(t, ns, "--state.file="+state)
	p.step("restarted with the state file", map[string]uint64{"svc/out/inet": a})

	// Without it, the series drops to the kernel's sum: Prometheus counts
	// a reset. This is what the state file is for.
	without := startOnNS(t, ns)
	_, fams := without.scrape(t)
	v, _ := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": "svc"})
	if v >= p.last["svc/out/inet"] {
		t.Errorf("without the state file: %v, want the kernel's sum, below the %v served", v, p.last["svc/out/inet"])
	}

	// A corrupt state file: logged, moved aside, a fresh start.
	if err := os.WriteFile(state, []byte("{corrupt"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := startOnNS(t, ns, "--state.file="+state)
	corrupt.scrape(t)
	if logs := corrupt.logs.WaitFor("moved to", 5*time.Second); !strings.Contains(logs, "state file "+state+" unusable, moved to "+state+".corrupt") {
		t.Errorf("corrupt state file not reported:\n%s", logs)
	}
	if _, err := os.Stat(state + ".corrupt"); err != nil {
		t.Errorf("corrupt state file not moved aside: %v", err)
	}
}

// TestCountersFirstReadFails: iptables-legacy waits for the xtables lock
// at the exporter's start; nothing the namespace sums is served until it
// has read once, so the sum never drops.
func TestCountersFirstReadFails(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-legacy", "flock")
	ns := netnstest.New(t, "192.0.2.1/24")
	// An iptables-nft style table and a legacy one: both in family ip, one
	// sum of two kernel counters, each read by its own collector.
	ns.NFT(`
table ip t {
	chain out {
		type filter hook output priority 0;
		udp dport 7001 counter comment "=svc_out="
	}
}
`)
	ns.Run("iptables-legacy", "-A", "OUTPUT", "-p", "udp", "--dport", "7001", "-m", "comment", "--comment", "=svc_out=")
	ns.SendUDP("192.0.2.1:40000", "192.0.2.1:7001", 1000, 4)
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	// -o: the lock is flock's own, not the sleep's, and goes with it.
	holder := exec.Command("flock", "-o", lock, "sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	release := func() {
		_ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		_ = holder.Wait()
	}
	t.Cleanup(release)
	deadline := time.Now().Add(5 * time.Second)
	for exec.Command("flock", "-n", lock, "true").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the lock is not held")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e := startExporter(t, []string{"XTABLES_LOCKFILE=" + lock}, "--netns="+ns.Path(), "--collector.iptables.lock-timeout=1s")
	_, fams := e.scrape(t)
	if ok, _ := value(fams, "ipacct_collector_success", map[string]string{"collector": "iptables"}); ok != 0 {
		t.Fatalf("iptables read while its lock is held")
	}
	if v, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": "svc"}); ok {
		t.Errorf("served %v before iptables-legacy's first read: a sum that would jump when it reads", v)
	}
	release()
	p := newPromView(t, e)
	p.step("iptables-legacy reads", nil)
	sent := ns.SendUDP("192.0.2.1:40000", "192.0.2.1:7001", 100, 1)
	// Both rules see the packet: two kernel counters.
	p.step("both count", map[string]uint64{"svc/out/ip": 2 * sent})
}

// TestCountersManagedReload: a reload of rules.yaml that changes one entry
// leaves the others' series counting on, exactly; the changed one starts
// again from its new rules.
func TestCountersManagedReload(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	path := writeFile(t, t.TempDir(), "rules.yaml", netnstest.SeedYAML)
	e := startOnNS(t, ns, "--config.file="+path)
	p := newPromView(t, e)
	p.step("start", nil)
	sent := ns.SendSeedTraffic()
	want := func(sent map[string]netnstest.Counter) map[string]uint64 {
		return map[string]uint64{
			"web4/in/inet": sent["=web4_down="].Bytes, "web4/out/inet": sent["=web4_up="].Bytes,
			"unauthssh/in/inet": sent["=unauthssh="].Bytes,
			"web6/in/inet":      sent["=web6_down="].Bytes, "web6/out/inet": sent["=web6_up="].Bytes,
			"web6ssl/in/inet": sent["=web6ssl_down="].Bytes, "web6ssl/out/inet": sent["=web6ssl_up="].Bytes,
		}
	}
	p.step("traffic", want(sent))

	writeFile(t, filepath.Dir(path), "rules.yaml", strings.Replace(netnstest.SeedYAML, "ports: [22]", "ports: [2222]", 1))
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Count(e.logs.String(), "rules.yaml applied") == 2 })
	sent = ns.SendSeedTraffic()
	w := want(sent)
	w["unauthssh/in/inet"] = 0 // now port 2222, which saw nothing
	p.step("after a reload that changed unauthssh", w)
}

// TestFiftyScrapersUnderChurn: fifty scrapers at once while rules come and
// go. Every answer is whole and valid, and no scraper sees a counter go
// down: they share reads of the kernel, and the tracked series stay
// monotonic through the churn.
func TestFiftyScrapersUnderChurn(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24")
	ns.NFT(svcRules)
	e := startOnNS(t, ns)
	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		n := 0
		defer func() { churned <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// A rule of the tag added, then deleted (nft -e echoes its
			// handle); traffic all along. Not t.Fatal: another goroutine.
			out, err := ns.Try("nft", "-e", "-a", "add", "rule", "inet", "t", "out", "udp", "dport", "7003", "counter", "comment", `"=svc_out="`)
			_, h, found := strings.Cut(out, "# handle ")
			if err != nil || !found {
				t.Errorf("adding a rule: %v %q", err, out)
				return
			}
			ns.SendUDP("192.0.2.1:40000", "192.0.2.1:7001", 100, 1)
			ns.SendUDP("192.0.2.1:40000", "192.0.2.1:7003", 100, 1)
			if _, err := ns.Try("nft", "delete", "rule", "inet", "t", "out", "handle", strings.TrimSpace(h)); err != nil {
				t.Errorf("deleting a rule: %v", err)
				return
			}
			n++
		}
	}()
	const scrapers, rounds = 50, 5
	var wg sync.WaitGroup
	for i := range scrapers {
		wg.Go(func() {
			client := &http.Client{Timeout: 20 * time.Second}
			last := -1.0
			for r := range rounds {
				resp, err := client.Get(e.url + "/metrics")
				if err != nil {
					t.Errorf("scraper %d round %d: %v", i, r, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("scraper %d round %d: %d %v", i, r, resp.StatusCode, err)
					return
				}
				parser := expfmt.NewTextParser(model.UTF8Validation)
				fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
				if err != nil {
					t.Errorf("scraper %d round %d: %v", i, r, err)
					return
				}
				v, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"tag": "svc"})
				if !ok || v < last {
					t.Errorf("scraper %d round %d: svc %v (present %v) after %v", i, r, v, ok, last)
				}
				last = v
			}
		})
	}
	wg.Wait()
	close(stop)
	if n := <-churned; n == 0 {
		t.Error("no churn happened during the scrapes")
	}
}
