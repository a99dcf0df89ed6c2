package report

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// kernelRulesYAML counts a tenant per address and a web tag summed over two
// rules (ports 80 and 443), in the test's namespace.
const kernelRulesYAML = `
accounting:
  - tag: web
    local: [192.0.2.1]
    protocol: udp
    ports: [%s]
addresses:
  - tag: rent31
    networks: [198.51.100.0/25]
`

// TestReportOfTheKernel is the report end to end, on the real kernel and
// exporter: Prometheus 2.42 scrapes the exporter every second and
// remote-writes to VictoriaMetrics. Hosts appear during the window with a
// burst before any scrape shows them, a rule of a summed tag is deleted,
// the exporter restarts; the report over the window, from either store,
// equals the bytes and packets sent, per address and tag, exactly.
//
// It needs the exporter's counter tracking of issue 14 (new counters served
// at 0 first, with created timestamps; a tag's counter never decreasing when
// one of its rules goes).
func TestReportOfTheKernel(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "prometheus", "victoria-metrics")
	const (
		server = "192.0.2.1"
		client = "203.0.113.5" // not a tenant's
	)
	ns := netnstest.New(t, server+"/24", client+"/24", "198.51.100.10/25", "198.51.100.11/25", "198.51.100.12/25", "198.51.100.13/25")
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeRules := func(ports string) {
		if err := os.WriteFile(rules, fmt.Appendf(nil, kernelRulesYAML, ports), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeRules("80, 443")

	type counts struct{ bytes, packets uint64 }
	sent := map[string]counts{} // "rent31 198.51.100.10 out", "web in"
	send := func(key, src, dst string, payload, n int) {
		b := ns.SendUDP(src, dst, payload, n)
		c := sent[key]
		sent[key] = counts{c.bytes + b, c.packets + uint64(n)}
	}
	// A tenant host's traffic to the server is its out; the answer its in.
	host := func(ip string, round int) {
		send("rent31 "+ip+" out", ip+":4000", server+":9000", 100+round, 2)
		send("rent31 "+ip+" in", server+":9000", ip+":4000", 300+round, 1)
	}

	bin := exetest.Binary(t)
	exporterAddr := exetest.FreeAddr(t)
	startExporter := func() *exec.Cmd {
		cmd := exec.Command(bin, "--web.listen-address="+exporterAddr, "--netns="+ns.Path(), "--config.file="+rules, "--no-collector.iptables", "--web.enable-lifecycle",
			// What the deleted rule counted survives the restart.
			"--state.file="+filepath.Join(dir, "state.json"))
		exetest.Start(t, "ipacct_exporter", "http://"+exporterAddr+"/metrics", 30*time.Second, cmd)
		return cmd
	}
	// The exporter installs the rules; 198.51.100.10 sends, and is there
	// when the exporter starts again: its counter is history when first
	// scraped.
	exporter := startExporter()
	host("198.51.100.10", 0)
	clear(sent)
	_ = exporter.Process.Kill()
	_ = exporter.Wait()
	exporter = startExporter()
	vm := startVictoriaMetrics(t, "remote", nil)
	prom := startPrometheusScraping(t, "ipacct", []string{exporterAddr}, vm+"/api/v1/write")
	waitUntil(t, "Prometheus scrapes the exporter", 60*time.Second, func() bool {
		return hasSamplesAfter(prom, `{__name__=~"ipacct_ip_bytes_total|ipacct_tag_bytes_total"}`, time.Now().Add(-3*time.Second), 3)
	})
	time.Sleep(1500 * time.Millisecond)
	from := time.Now()
	time.Sleep(1500 * time.Millisecond)

	web := func(port string, round int) {
		send("web in", client+":5000", server+":"+port, 500+round, 3)
		send("web out", server+":"+port, client+":5000", 40+round, 1)
	}
	round := 0
	traffic := func(hosts ...string) {
		round++
		web("80", round)
		for _, h := range hosts {
			host(h, round)
		}
		time.Sleep(700 * time.Millisecond)
	}
	for range 3 {
		web("443", round)
		traffic("198.51.100.10")
	}
	// New hosts, each with a burst before any scrape shows it.
	host("198.51.100.11", 50)
	host("198.51.100.11", 51)
	host("198.51.100.12", 60)
	for range 3 {
		web("443", round)
		traffic("198.51.100.10", "198.51.100.11", "198.51.100.12")
	}

	// A rule of the summed tag web goes: port 443 is counted no more.
	writeRules("80")
	resp, err := http.Post("http://"+exporterAddr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %s", resp.Status)
	}
	for range 3 {
		traffic("198.51.100.10", "198.51.100.11", "198.51.100.12")
	}

	// The exporter restarts (systemctl restart: SIGTERM); a host appears
	// after it.
	_ = exporter.Process.Signal(syscall.SIGTERM)
	_ = exporter.Wait()
	traffic("198.51.100.10", "198.51.100.12")
	startExporter()
	traffic("198.51.100.10", "198.51.100.12")
	host("198.51.100.13", 70)
	for range 3 {
		traffic("198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13")
	}

	// Every counter's last value scraped, then the window ends.
	last := time.Now().Add(1500 * time.Millisecond)
	for name, url := range map[string]string{"Prometheus": prom, "VictoriaMetrics": vm} {
		waitUntil(t, name+" has samples after the traffic", 60*time.Second, func() bool {
			return hasSamplesAfter(url, `{__name__=~"ipacct_ip_bytes_total|ipacct_tag_bytes_total",tag=~"web|rent31"}`, last, 9)
		})
	}
	to := last

	for name, url := range map[string]string{"Prometheus": prom, "VictoriaMetrics": vm} {
		t.Run(name, func(t *testing.T) {
			client, err := NewClient(url, "")
			if err != nil {
				t.Fatal(err)
			}
			r, err := Build(context.Background(), client, Options{Period: Period{From: from, To: to}, MaxGap: 10 * time.Minute, Chunk: time.Minute, Tags: []string{"web", "rent31"}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]counts{}
			for _, tag := range r.Tags {
				for _, a := range tag.Addresses {
					got[tag.Name+" "+a.IP+" in"] = counts{a.In.Bytes, a.In.Packets}
					got[tag.Name+" "+a.IP+" out"] = counts{a.Out.Bytes, a.Out.Packets}
				}
				if tag.Metric == MetricTag {
					got[tag.Name+" in"] = counts{tag.In.Bytes, tag.In.Packets}
					got[tag.Name+" out"] = counts{tag.Out.Bytes, tag.Out.Packets}
				}
			}
			for k, want := range sent {
				if got[k] != want {
					t.Errorf("%s: report %+v, sent %+v", k, got[k], want)
				}
			}
			for k := range got {
				if _, ok := sent[k]; !ok && got[k] != (counts{}) {
					t.Errorf("%s: report %+v, nothing sent", k, got[k])
				}
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %s", strings.Join(r.Warnings, "; "))
			}
		})
	}
}
