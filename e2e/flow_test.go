package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// flowsYAML counts seed 001's tenant from a router's flows: per address,
// and a tag entry for one host's service port. softflowd reports every
// flow with interface index 7 (-i 7:eth0), which the exporter filter asks
// for.
const flowsYAML = `
accounting:
  - tag: svc
    source: flow
    local: [198.51.100.11]
    protocol: udp
    ports: [4001]
addresses:
  - tag: rent31
    source: flow
    networks: [198.51.100.0/25, 2001:db8:31::/112]
flow:
  routers:
    - address: 127.0.0.1
      input_interfaces: [7]
      output_interfaces: [7]
`

// TestFlowsSoftflowd runs Debian's softflowd as the router: on the veth
// between a tenant's office and the upstream, both namespaces of the test,
// exporting NetFlow v5, v9 and IPFIX to the exporter and, the same
// datagrams, to nfcapd. The exporter's per-address and tag totals must
// equal the traffic the test sent, and nfdump's aggregation of nfcapd's
// copy.
//
// Timeouts: softflowd expires an idle UDP flow after 300 s and any flow
// after maxlife (7 days); the test takes seconds, so no flow expires while
// it runs. "softflowctl shutdown" then expires and exports every flow at
// once: each flow is one record, and the totals are exact, not "within a
// timeout". softflowd counts IP bytes (header included), as the kernel does.
func TestFlowsSoftflowd(t *testing.T) {
	netnstest.RequireRoot(t, "softflowd", "softflowctl", "nfcapd", "nfdump")
	for _, version := range []int{5, 9, 10} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { testSoftflowd(t, version) })
	}
}

func testSoftflowd(t *testing.T, version int) {
	office := netnstest.New(t)
	router := netnstest.New(t)
	netnstest.Link(office, "lan0", []string{"198.51.100.10/24", "198.51.100.11/24", "192.0.2.1/24", "2001:db8:31::10/64"},
		router, "eth0", []string{"198.51.100.200/24", "192.0.2.2/24", "2001:db8:31::1:1/64"})
	// Static neighbours: neighbour discovery is traffic of the tenant's
	// IPv6 address too (ICMPv6), which the test would have to predict.
	officeMAC := strings.TrimSpace(office.Run("cat", "/sys/class/net/lan0/address"))
	routerMAC := strings.TrimSpace(router.Run("cat", "/sys/class/net/eth0/address"))
	office.Run("ip", "-6", "neigh", "replace", "2001:db8:31::1:1", "lladdr", routerMAC, "dev", "lan0", "nud", "permanent")
	router.Run("ip", "-6", "neigh", "replace", "2001:db8:31::10", "lladdr", officeMAC, "dev", "eth0", "nud", "permanent")
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yaml", flowsYAML)

	// The exporter, its nfcapd twin and softflowd all run in the router's
	// namespace; export datagrams go over its loopback.
	client := nsHTTPClient(router)
	e := startInNS(t, router, client, "--web.listen-address=127.0.0.1:10427", "--config.file="+rules,
		"--collector.flow.listen-address=127.0.0.1:2055", "--no-collector.iptables", "--web.enable-lifecycle")
	nfdir := filepath.Join(dir, "nfcapd")
	if err := os.Mkdir(nfdir, 0o755); err != nil {
		t.Fatal(err)
	}
	nfcapd := startProcess(t, router, "nfcapd", "nfcapd", "-w", nfdir, "-b", "127.0.0.1", "-p", "2056", "-C", "none")
	ctl := filepath.Join(dir, "softflowd.ctl")
	// -C 1600: whole packets (see flushCapture). -i 7:eth0: interface
	// index 7 in every record.
	softflowd := startProcess(t, router, "softflowd", "softflowd", "-d", "-C", "1600", "-i", "7:eth0",
		"-n", "127.0.0.1:2055,127.0.0.1:2056", "-v", strconv.Itoa(version),
		"-p", filepath.Join(dir, "softflowd.pid"), "-c", ctl)
	// softflowd opens its control socket after the capture: once it
	// answers, the capture runs.
	waitFor(t, 10*time.Second, "softflowd's control socket", func() bool {
		_, err := router.Try("softflowctl", "-c", ctl, "statistics")
		return err == nil
	})

	type host struct {
		tag, src, dst     string
		payload, reply, n int
		v6                bool
	}
	hosts := []host{
		{"rent31", "198.51.100.10:4000", "198.51.100.200:5000", 100, 30, 3, false},
		{"rent31", "198.51.100.11:4001", "198.51.100.200:5001", 300, 700, 4, false},
		{"rent31", "[2001:db8:31::10]:4002", "[2001:db8:31::1:1]:5002", 200, 1000, 5, true},
	}
	want := map[string]netnstest.Counter{} // "tag ip direction", and "svc direction"
	for _, h := range hosts {
		if h.v6 && version == 5 {
			continue // NetFlow v5 has no IPv6
		}
		sent, received := netnstest.Exchange(office, h.src, router, h.dst, h.payload, h.reply, h.n)
		ip := netip.MustParseAddrPort(h.src).Addr().String()
		want[h.tag+" "+ip+" out"] = want[h.tag+" "+ip+" out"].Add(sent)
		want[h.tag+" "+ip+" in"] = want[h.tag+" "+ip+" in"].Add(received)
		if strings.HasSuffix(h.src, ":4001") {
			want["svc out"], want["svc in"] = sent, received
		}
	}
	flushCapture(t, office, router, ctl)
	if _, err := router.Try("softflowctl", "-c", ctl, "shutdown"); err != nil {
		t.Fatal(err)
	}
	if err := softflowd.Wait(); err != nil {
		t.Logf("softflowd: %v", err) // it exits 1 on a requested shutdown
	}

	// softflowd has sent everything; wait until the exporter has taken it.
	// A scrape reads the flows' counts before the datagram counter, so one
	// datagram can land between the two: the counter has it, the counts
	// show it one scrape later, where its new addresses are served at 0
	// first. With the counter the same in three scrapes in a row, the
	// last is a read after the first that had the last datagram's counts.
	var fams map[string]*dto.MetricFamily
	last := []float64{-1, -1}
	waitFor(t, 10*time.Second, "the exporter to receive the datagrams", func() bool {
		_, fams = scrapeWith(t, client, e)
		n, _ := value(fams, "ipacct_flow_datagrams_total", map[string]string{"router": "127.0.0.1"})
		stable := n > 0 && n == last[0] && n == last[1]
		last = []float64{last[1], n}
		if !stable {
			time.Sleep(200 * time.Millisecond)
		}
		return stable
	})
	got := map[string]netnstest.Counter{}
	for _, m := range fams["ipacct_ip_bytes_total"].GetMetric() {
		l := labelMap(m)
		k := l["tag"] + " " + l["ip"] + " " + l["direction"]
		p, _ := value(fams, "ipacct_ip_packets_total", l)
		got[k] = netnstest.Counter{Packets: uint64(p), Bytes: uint64(m.GetCounter().GetValue())}
	}
	for _, m := range fams["ipacct_tag_bytes_total"].GetMetric() {
		l := labelMap(m)
		if l["table_family"] != "inet" {
			t.Errorf("tag series %v: table_family %q, want inet", l, l["table_family"])
		}
		p, _ := value(fams, "ipacct_tag_packets_total", l)
		got[l["tag"]+" "+l["direction"]] = netnstest.Counter{Packets: uint64(p), Bytes: uint64(m.GetCounter().GetValue())}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("/metrics counted\n  %v\nthe test sent\n  %v", got, want)
	}
	for _, name := range []string{"ipacct_flow_decode_errors_total", "ipacct_flow_unknown_template_sets_total", "ipacct_flow_filtered_records_total"} {
		if v, ok := value(fams, name, map[string]string{"router": "127.0.0.1"}); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
	if v, _ := value(fams, "ipacct_collector_success", map[string]string{"collector": "flow"}); v != 1 {
		t.Errorf("ipacct_collector_success{collector=flow} = %v", v)
	}

	// nfcapd writes its file when it stops.
	_ = nfcapd.Process.Signal(syscall.SIGTERM)
	_ = nfcapd.Wait()
	nf := map[string]netnstest.Counter{}
	for _, dir := range []string{"out", "in"} {
		agg, col := "srcip", "sa"
		if dir == "in" {
			agg, col = "dstip", "da"
		}
		for ip, c := range nfdumpAggregate(t, nfdir, agg, col) {
			// Only the tenant's addresses: nfdump sees every flow.
			if a := netip.MustParseAddr(ip); netip.MustParsePrefix("198.51.100.0/25").Contains(a) || netip.MustParsePrefix("2001:db8:31::/112").Contains(a) {
				nf["rent31 "+ip+" "+dir] = c
			}
		}
	}
	for k := range got {
		if !strings.HasPrefix(k, "rent31 ") {
			continue
		}
		if got[k] != nf[k] {
			t.Errorf("%s: the exporter counted %+v, nfdump %+v", k, got[k], nf[k])
		}
	}
	if len(nf) != len(want)-2 {
		t.Errorf("nfdump has %d tenant series, want %d: %v", len(nf), len(want)-2, nf)
	}
	if version == 9 {
		checkFlowsReload(t, client, e, rules, want)
	}
}

// checkFlowsReload: POST /-/reload gives the flows the file's new parse.
// The tenant's counts carry over, the addresses its networks no longer
// hold leave, and the new description shows.
func checkFlowsReload(t *testing.T, client *http.Client, url, rules string, want map[string]netnstest.Counter) {
	t.Helper()
	writeFile(t, filepath.Dir(rules), filepath.Base(rules), strings.Replace(flowsYAML,
		"networks: [198.51.100.0/25, 2001:db8:31::/112]", "description: Office 31\n    networks: [198.51.100.0/25]", 1))
	resp, err := client.Post(url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /-/reload: %s", resp.Status)
	}
	_, fams := scrapeWith(t, client, url)
	if v, _ := value(fams, "ipacct_tag_info", map[string]string{"tag": "rent31", "description": "Office 31"}); v != 1 {
		t.Error("after the reload, no ipacct_tag_info for rent31 with its new description")
	}
	for k, w := range want {
		f := strings.Fields(k)
		if len(f) != 3 {
			continue
		}
		b, ok := value(fams, "ipacct_ip_bytes_total", map[string]string{"tag": f[0], "ip": f[1], "direction": f[2]})
		if strings.Contains(f[1], ":") {
			if ok {
				t.Errorf("after the reload, %s is still counted", k)
			}
		} else if uint64(b) != w.Bytes {
			t.Errorf("after the reload, %s has %v bytes, want %d kept", k, b, w.Bytes)
		}
	}
}

// flushCapture makes softflowd see every packet sent so far. libpcap
// gives it packets a ring block (256 KiB) at a time, and on this kernel a
// block that is not full is not handed over: the last test packets would
// wait forever. Filler traffic between addresses no entry watches fills
// the blocks, until softflowd has processed as many packets as the capture
// had received before the filler.
func flushCapture(t *testing.T, office, router *netnstest.NS, ctl string) {
	t.Helper()
	before := softflowStat(t, router, ctl, "Packets received by libpcap")
	for round := 0; ; round++ {
		if round == 10 {
			t.Fatalf("softflowd processed %d packets, the capture had %d", softflowStat(t, router, ctl, "Packets processed"), before)
		}
		// 300 packets of 1428 bytes fill more than a block.
		netnstest.Exchange(office, fmt.Sprintf("192.0.2.1:%d", 6000+round), router, fmt.Sprintf("192.0.2.2:%d", 7000+round), 1400, 1400, 150)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if softflowStat(t, router, ctl, "Packets processed")+softflowStat(t, router, ctl, "Ignored packets") >= before {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

var statLine = regexp.MustCompile(`(?m)^([A-Za-z ]+): (\d+)`)

func softflowStat(t *testing.T, ns *netnstest.NS, ctl, name string) int {
	t.Helper()
	out := ns.Run("softflowctl", "-c", ctl, "statistics")
	for _, m := range statLine.FindAllStringSubmatch(out, -1) {
		if m[1] == name {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	t.Fatalf("softflowctl statistics has no %q:\n%s", name, out)
	return 0
}

// nfdumpAggregate runs nfdump over nfcapd's files, aggregated by agg
// (srcip, dstip), and returns packets and bytes per address of column col.
func nfdumpAggregate(t *testing.T, dir, agg, col string) map[string]netnstest.Counter {
	t.Helper()
	cmd := exec.Command("nfdump", "-R", dir, "-N", "-A", agg, "-o", "csv")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nfdump: %v\n%s", err, out)
	}
	// A header, the rows, then a summary.
	table, _, _ := bytes.Cut(out, []byte("\nSummary\n"))
	rows, err := csv.NewReader(bytes.NewReader(table)).ReadAll()
	if err != nil || len(rows) < 1 {
		t.Fatalf("nfdump output: %v\n%s", err, out)
	}
	idx := map[string]int{}
	for i, h := range rows[0] {
		idx[h] = i
	}
	for _, h := range []string{col, "ipkt", "ibyt"} {
		if _, ok := idx[h]; !ok {
			t.Fatalf("nfdump's CSV has no column %s:\n%s", h, out)
		}
	}
	res := map[string]netnstest.Counter{}
	for _, r := range rows[1:] {
		p, _ := strconv.ParseUint(r[idx["ipkt"]], 10, 64)
		b, _ := strconv.ParseUint(r[idx["ibyt"]], 10, 64)
		res[r[idx[col]]] = res[r[idx[col]]].Add(netnstest.Counter{Packets: p, Bytes: b})
	}
	return res
}

// nsHTTPClient dials from inside the namespace, where the exporter
// listens on the loopback.
func nsHTTPClient(ns *netnstest.NS) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := netns.Do(ns.Path(), func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// startInNS runs the exporter inside the namespace and waits until it
// answers there; it returns the base URL.
func startInNS(t *testing.T, ns *netnstest.NS, client *http.Client, args ...string) string {
	t.Helper()
	startProcess(t, ns, "exporter", exetest.Binary(t), args...)
	url := "http://127.0.0.1:10427"
	waitFor(t, 15*time.Second, "the exporter to answer", func() bool {
		resp, err := client.Get(url + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// startProcess runs a program in the namespace; it is killed when the test
// ends, and its output shown if the test failed.
func startProcess(t *testing.T, ns *netnstest.NS, name, prog string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, prog}, args...)...)
	exetest.Run(t, name, cmd)
	return cmd
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}
