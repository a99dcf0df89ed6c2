package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// These tests run the real binary against rules in a namespace of their own,
// scrape /metrics over HTTP and compare with what the kernel says.

// TestMain removes the exporter that the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	exetest.RemoveBinary()
	os.Exit(code)
}

func exporterBinary(t *testing.T) string { return exetest.Binary(t) }

type runningExporter struct {
	url  string
	logs *exetest.SyncBuffer
	cmd  *exec.Cmd
}

// startExporter runs the binary on a free loopback port with args and env
// added, and stops it when the test ends.
func startExporter(t *testing.T, env []string, args ...string) *runningExporter {
	t.Helper()
	addr := exetest.FreeAddr(t)
	cmd := exec.Command(exporterBinary(t), append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	url := "http://" + addr
	logs := exetest.Start(t, "exporter", url+"/", 15*time.Second, cmd)
	return &runningExporter{url: url, logs: logs, cmd: cmd}
}

// scrape returns the exposition text and its parsed families.
func (e *runningExporter) scrape(t *testing.T) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	return scrapeWith(t, http.DefaultClient, e.url)
}

// scrapeWith gets url's /metrics with client, requires a 200, and returns
// the exposition text and its parsed families.
func scrapeWith(t *testing.T, client *http.Client, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return string(body), fams
}

// value returns the sample of family name whose labels include all of
// labels, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

type series struct{ tag, direction, family string }

// tokens maps a tag token to its series labels, per family.
var tokens = map[string]struct{ tag, direction string }{
	"=unauthssh=": {"unauthssh", "none"}, "=web4_down=": {"web4", "in"}, "=web4_up=": {"web4", "out"},
	"=web6_down=": {"web6", "in"}, "=web6_up=": {"web6", "out"}, "=web6ssl_down=": {"web6ssl", "in"},
	"=web6ssl_up=": {"web6ssl", "out"}, "=q_in=": {"q", "in"},
}

// kernelSums reads every rule counter in the namespace with the operators'
// own tools and sums them per series: the truth /metrics must equal.
func kernelSums(ns *netnstest.NS) map[series]netnstest.Counter {
	return kernelSumsOf(ns, true, true)
}

// kernelSumsOf is kernelSums of the native nft and iptables-nft rules (nft)
// and of the iptables-legacy ones (legacy).
func kernelSumsOf(ns *netnstest.NS, nft, legacy bool) map[series]netnstest.Counter {
	sums := map[series]netnstest.Counter{}
	add := func(family string, perToken map[string]netnstest.Counter) {
		for tok, c := range perToken {
			tk, ok := tokens[tok]
			if !ok {
				continue
			}
			k := series{tk.tag, tk.direction, family}
			sums[k] = sums[k].Add(c)
		}
	}
	if nft {
		// Native rules: acct4 holds only IPv4 tags, acct6 only IPv6 ones.
		for tok, c := range ns.NFTCounters() {
			fam := "ip"
			if strings.HasPrefix(tok, "=web6") {
				fam = "ip6"
			}
			add(fam, map[string]netnstest.Counter{tok: c})
		}
		add("ip", ns.SaveCounters("iptables-nft-save"))
		add("ip6", ns.SaveCounters("ip6tables-nft-save"))
	}
	if legacy {
		add("ip", ns.SaveCounters("iptables-legacy-save"))
		add("ip6", ns.SaveCounters("ip6tables-legacy-save"))
	}
	return sums
}

func TestEndToEndAllCollectors(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	for _, cmd := range append(netnstest.SeedXtables("iptables-nft", "ip6tables-nft"), netnstest.SeedXtables("iptables-legacy", "ip6tables-legacy")...) {
		ns.Run(cmd[0], cmd[1:]...)
	}
	e := startExporter(t, nil, "--netns="+ns.Name, "--log.level=debug")

	sent := ns.SendSeedTraffic()

	text, fams := e.scrape(t)
	kernel := kernelSums(ns)
	for s, c := range kernel {
		labels := map[string]string{"tag": s.tag, "direction": s.direction, "table_family": s.family}
		p, okp := value(fams, "ipacct_tag_packets_total", labels)
		b, okb := value(fams, "ipacct_tag_bytes_total", labels)
		if !okp || !okb || uint64(p) != c.Packets || uint64(b) != c.Bytes {
			t.Errorf("%v: /metrics has %v packets, %v bytes (present %v %v); the kernel %d, %d", s, p, b, okp, okb, c.Packets, c.Bytes)
		}
	}
	// And the kernel against the traffic: native rules count a local
	// packet once (one chain per hook), the two xtables variants twice each
	// (ACCT4 is jumped to from INPUT and OUTPUT): five times in all.
	for tok, c := range sent {
		tk, bytes := tokens[tok], c.Bytes
		fam := "ip"
		if strings.HasPrefix(tok, "=web6") {
			fam = "ip6"
		}
		times := uint64(5)
		if tok == "=q_in=" {
			times = 4 // only in the xtables rules
		}
		if got := kernel[series{tk.tag, tk.direction, fam}].Bytes; got != times*bytes {
			t.Errorf("%s: kernel counted %d bytes, %d× the %d sent is %d", tok, got, times, bytes, times*bytes)
		}
	}
	if want := len(kernel); want < 8 {
		t.Errorf("only %d series in the kernel; the rules did not load as meant", want)
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ipacct_tag_rules", map[string]string{"tag": "web4", "direction": "in", "table_family": "ip"}, 6},
		{"ipacct_tag_rules", map[string]string{"tag": "unauthssh", "direction": "none", "table_family": "ip"}, 3},
		{"ipacct_tag_info", map[string]string{"tag": "q", "description": `say "hi" \ ünïcödé`}, 1},
		{"ipacct_tag_info", map[string]string{"tag": "web4", "description": "Combined web traffic to/from local 80/443"}, 1},
		{"ipacct_tag_info", map[string]string{"tag": "web6ssl", "description": "Web traffic to/from local port 443"}, 1},
		{"ipacct_invalid_tag_comments", map[string]string{"collector": "nftables"}, 2}, // =bad tag= and iptables-nft's =toolong…=
		{"ipacct_invalid_tag_comments", map[string]string{"collector": "iptables"}, 1},
		{"ipacct_collector_success", map[string]string{"collector": "nftables"}, 1},
		{"ipacct_collector_success", map[string]string{"collector": "iptables"}, 1},
	}
	for _, c := range checks {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if strings.Contains(text, "untagged") || strings.Contains(text, `tag="bad`) {
		t.Errorf("an untagged or invalid rule reached /metrics:\n%s", text)
	}
	if n := strings.Count(e.logs.String(), "its tag comment does not parse"); n != 3 {
		t.Errorf("want 3 warnings, one per distinct invalid comment, got %d", n)
	}
	if _, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		netnstest.Skip(t, "promtool not installed")
	}

	// A scrape changes no counter: a second one without traffic is equal.
	_, again := e.scrape(t)
	for s := range kernel {
		labels := map[string]string{"tag": s.tag, "direction": s.direction, "table_family": s.family}
		a, _ := value(fams, "ipacct_tag_bytes_total", labels)
		b, _ := value(again, "ipacct_tag_bytes_total", labels)
		if a != b {
			t.Errorf("%v changed between two scrapes without traffic: %v then %v", s, a, b)
		}
	}

	// A table deleted between two scrapes, without traffic: its rules leave
	// the kernel's sums, but what they counted stays in the series, which
	// neither drop (a reset to Prometheus) nor grow.
	ns.Run("nft", "delete", "table", "ip6", "acct6")
	_, fams = e.scrape(t)
	for s := range kernelSums(ns) {
		labels := map[string]string{"tag": s.tag, "direction": s.direction, "table_family": s.family}
		before, _ := value(again, "ipacct_tag_bytes_total", labels)
		if b, ok := value(fams, "ipacct_tag_bytes_total", labels); !ok || b != before {
			t.Errorf("after deleting acct6, %v: /metrics %v, want %v as before", s, b, before)
		}
	}
	if got, _ := value(fams, "ipacct_tag_rules", map[string]string{"tag": "web6", "direction": "in", "table_family": "ip6"}); got != 2 {
		t.Errorf("web6 in ip6 should now sum the 2 xtables rules, sums %v", got)
	}
}

func TestCollectorFailingWhileOtherServes(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-legacy")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	for _, cmd := range netnstest.SeedXtables("iptables-legacy", "ip6tables-legacy") {
		ns.Run(cmd[0], cmd[1:]...)
	}
	ns.SendSeedTraffic()
	// Legacy tables exist, but the exporter cannot find iptables-legacy.
	e := startExporter(t, []string{"PATH=/nonexistent"}, "--netns="+ns.Path())
	_, fams := e.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ipacct_collector_success", map[string]string{"collector": "iptables"}, 0},
		{"ipacct_collector_success", map[string]string{"collector": "nftables"}, 1},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The tag series iptables-legacy could add to (ip, ip6) wait for its
	// first read: served without its share, they would jump when it reads.
	for _, m := range fams["ipacct_tag_bytes_total"].GetMetric() {
		if f := labelMap(m)["table_family"]; f == "ip" || f == "ip6" {
			t.Errorf("served %v while iptables-legacy has not read", labelMap(m))
		}
	}
	e.scrape(t)
	if n := strings.Count(e.logs.String(), "collector failed"); n != 1 || !strings.Contains(e.logs.String(), "iptables-legacy") {
		t.Errorf("want one clear error line naming iptables-legacy, got %d:\n%s", n, e.logs.String())
	}
}

func TestAllCollectorsDisabled(t *testing.T) {
	out, err := exec.Command(exporterBinary(t), "--no-collector.nftables", "--no-collector.iptables").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "every collector is disabled") {
		t.Errorf("got %v:\n%s", err, out)
	}
}
