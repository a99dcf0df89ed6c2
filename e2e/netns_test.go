package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// multiNSRules count UDP to port 9000 with a tagged rule and, per source
// address, in a tagged set: the same tags in every namespace, so that only
// the netns label tells them apart.
const multiNSRules = `
table inet acct {
	set clients { type ipv4_addr; flags dynamic; counter; size 100; comment "=clients_in= Clients"; }
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 9000 counter comment "=web_in= Web"
		udp dport 9000 update @clients { ip saddr }
	}
}
`

// nsTraffic is what one namespace of the test sent and its kernel counted.
type nsTraffic struct {
	ns        *netnstest.NS
	label     string // its netns label value
	packets   uint64
	ipBytes   uint64
	rule, set netnstest.Counter
}

// newCountingNS creates a namespace of the group and counts in it.
func newCountingNS(t *testing.T, group string, payload, count int) *nsTraffic {
	return countIn(netnstest.NewInGroup(t, group, "192.0.2.1/24"), payload, count)
}

// countIn loads multiNSRules into a namespace with 192.0.2.1, sends count
// datagrams of payload bytes from 192.0.2.1 to its port 9000, and reads
// the kernel's counters.
func countIn(ns *netnstest.NS, payload, count int) *nsTraffic {
	ns.NFT(multiNSRules)
	ipBytes := ns.SendUDP("192.0.2.1:40000", "192.0.2.1:9000", payload, count)
	return &nsTraffic{ns: ns, label: ns.Name, packets: uint64(count), ipBytes: ipBytes,
		rule: ns.NFTCounters()["=web_in="], set: ns.NFTSetCounters()["=clients_in= 192.0.2.1"]}
}

// check compares the namespace's series on /metrics with its traffic and
// its kernel's counters.
func (n *nsTraffic) check(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	want := netnstest.Counter{Packets: n.packets, Bytes: n.ipBytes}
	if n.rule != want || n.set != want {
		t.Fatalf("%s: kernel rule %+v, set element %+v; sent %+v", n.ns.Name, n.rule, n.set, want)
	}
	tagLabels := map[string]string{"netns": n.label, "tag": "web", "direction": "in", "table_family": "inet"}
	ipLabels := map[string]string{"netns": n.label, "tag": "clients", "direction": "in", "family": "ipv4", "ip": "192.0.2.1"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   uint64
	}{
		{"ipacct_tag_bytes_total", tagLabels, want.Bytes},
		{"ipacct_tag_packets_total", tagLabels, want.Packets},
		{"ipacct_ip_bytes_total", ipLabels, want.Bytes},
		{"ipacct_ip_packets_total", ipLabels, want.Packets},
		{"ipacct_collector_success", map[string]string{"netns": n.label, "collector": "nftables"}, 1},
		{"ipacct_collector_success", map[string]string{"netns": n.label, "collector": "iptables"}, 1},
	} {
		got, ok := value(fams, c.name, c.labels)
		if !ok || got != float64(c.want) {
			t.Errorf("%s%v = %v (present %v), want %d", c.name, c.labels, got, ok, c.want)
		}
	}
}

// netnsValues lists the netns label values of a family's series.
func netnsValues(fams map[string]*dto.MetricFamily, name string) map[string]int {
	seen := map[string]int{}
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "netns" {
				seen[lp.GetValue()]++
			}
		}
	}
	return seen
}

// TestSeveralNamespaces reads three namespaces through one glob: each
// one's counters exact and labelled with its name, a namespace created after
// the start read at the next scrape, one deleted between scrapes gone
// without an error.
func TestSeveralNamespaces(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	group := "mns" + netnstest.Group(t)
	a := newCountingNS(t, group, 100, 3)
	b := newCountingNS(t, group, 200, 7)
	e := startExporter(t, nil, "--netns=ipacct-"+group+"-*")

	_, fams := e.scrape(t)
	a.check(t, fams)
	b.check(t, fams)
	if got := netnsValues(fams, "ipacct_collector_success"); len(got) != 2 {
		t.Errorf("namespaces read: %v, want %s and %s", got, a.ns.Name, b.ns.Name)
	}

	c := newCountingNS(t, group, 300, 5)
	_, fams = e.scrape(t)
	for _, n := range []*nsTraffic{a, b, c} {
		n.check(t, fams)
	}

	b.ns.Delete()
	for range 3 {
		_, fams = e.scrape(t)
	}
	a.check(t, fams)
	c.check(t, fams)
	for _, name := range []string{"ipacct_collector_success", "ipacct_tag_bytes_total", "ipacct_ip_bytes_total", "ipacct_tag_info"} {
		if n := netnsValues(fams, name)[b.ns.Name]; n != 0 {
			t.Errorf("%s still has %d series of the deleted namespace", name, n)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("a namespace that went away was logged as an error:\n%s", logs)
	}
}

// TestNamespaceNamesNotUTF8 reads, through a glob, namespaces whose names
// are not UTF-8 or hold control characters, which a label value cannot:
// every scrape answers, each namespace's series carry its name escaped, and
// names that differ keep apart, a backslash written in a name among them.
func TestNamespaceNamesNotUTF8(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	prefix := "ipacct-bad" + netnstest.Group(t) + "-"
	var spaces []*nsTraffic
	for name, label := range map[string]string{
		"\xff":     `\xff`,
		"\xfe\x01": `\xfe\x01`,
		`\xff`:     `\\xff`,
		"ok":       "ok",
	} {
		n := countIn(netnstest.NewNamed(t, prefix+name, "192.0.2.1/24"), 100, 3)
		n.label = prefix + label
		spaces = append(spaces, n)
	}
	e := startExporter(t, nil, "--netns="+prefix+"*")
	// A scrape that panicked on a label value once left a lock held, and
	// every later scrape hung: bound the wait.
	client := &http.Client{Timeout: 30 * time.Second}
	for range 3 {
		_, fams := scrapeWith(t, client, e.url) // fails the test unless it is a 200
		for _, n := range spaces {
			n.check(t, fams)
		}
		if got := netnsValues(fams, "ipacct_tag_bytes_total"); len(got) != len(spaces) {
			t.Errorf("netns values %v, want one for each of %d namespaces", got, len(spaces))
		}
	}
}

// TestNamedNamespaceMissing names a namespace that does not exist beside one
// that does: the missing one's collectors fail with one logged line each,
// not one per scrape, the other's are read, and once the namespace is
// created it is read without a restart.
func TestNamedNamespaceMissing(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	group := "mns" + netnstest.Group(t)
	a := newCountingNS(t, group, 100, 3)
	missing := "ipacct-" + group + "-later"
	e := startExporter(t, nil, "--netns="+a.ns.Name, "--netns="+missing, "--no-collector.iptables")
	var fams map[string]*dto.MetricFamily
	for range 3 {
		_, fams = e.scrape(t)
	}
	if got, ok := value(fams, "ipacct_collector_success", map[string]string{"netns": missing, "collector": "nftables"}); !ok || got != 0 {
		t.Errorf("success of the missing namespace = %v (present %v), want 0", got, ok)
	}
	if got, ok := value(fams, "ipacct_tag_bytes_total", map[string]string{"netns": a.ns.Name}); !ok || got != float64(a.ipBytes) {
		t.Errorf("bytes of %s = %v (present %v), want %d", a.ns.Name, got, ok, a.ipBytes)
	}
	logs := e.logs.WaitFor("collector failed", 5*time.Second)
	if n := strings.Count(logs, "collector failed"); n != 1 || !strings.Contains(logs, "/run/netns/"+missing) {
		t.Errorf("want one failure line naming /run/netns/%s, got %d:\n%s", missing, n, logs)
	}

	// The name appears, made by hand as an operator would.
	if out, err := exec.Command("ip", "netns", "add", missing).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", missing).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", missing, err, out)
		}
	})
	_, fams = e.scrape(t)
	if got, ok := value(fams, "ipacct_collector_success", map[string]string{"netns": missing, "collector": "nftables"}); !ok || got != 1 {
		t.Errorf("success once the namespace exists = %v (present %v), want 1", got, ok)
	}
	if !strings.Contains(e.logs.WaitFor("collector recovered", 5*time.Second), "collector recovered") {
		t.Errorf("no recovery logged:\n%s", e.logs.String())
	}
}

// TestUserNamespaceRefused: an unprivileged user makes a network namespace
// in a user namespace of their own (unshare -rn) and fills it with a tagged
// set whose counters they chose. A glob over every process's namespace
// skips it, with one log line; named, it fails its collector; read only
// with --netns.allow-user-namespaces.
func TestUserNamespaceRefused(t *testing.T) {
	tag := "inj" + netnstest.Group(t)
	const packets, bytes = 7000000000, 11000000000000 // 11 TB billed
	path := netnstest.NewUserNS(t, nobody, fmt.Sprintf(`table inet inj {
	set clients {
		type ipv4_addr; flags dynamic; counter; size 100; comment "=%s_in= Tenant"
		elements = { 192.0.2.7 counter packets %d bytes %d }
	}
}`, tag, packets, bytes))
	labels := map[string]string{"netns": path, "tag": tag, "direction": "in", "ip": "192.0.2.7"}

	e := startExporter(t, nil, "--netns=/proc/[0-9]*/ns/net", "--no-collector.iptables")
	for range 3 {
		_, fams := e.scrape(t)
		for _, m := range fams["ipacct_ip_bytes_total"].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "tag" && lp.GetValue() == tag {
					t.Fatalf("the glob read the user's set: %v", m)
				}
			}
		}
		if got := netnsValues(fams, "ipacct_collector_success")[path]; got != 0 {
			t.Errorf("the glob read %s: %d collector series", path, got)
		}
	}
	logs := e.logs.WaitFor(path, 5*time.Second)
	skipped := 0
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, "network namespace skipped") && strings.Contains(l, path) {
			skipped++
		}
	}
	if skipped != 1 || !strings.Contains(logs, "made by uid "+nobody) {
		t.Errorf("%d log lines skipping %s, want one naming uid %s:\n%s", skipped, path, nobody, logs)
	}

	named := startExporter(t, nil, "--netns="+path, "--netns=/proc/self/ns/net", "--no-collector.iptables")
	_, fams := named.scrape(t)
	if got, ok := value(fams, "ipacct_collector_success", map[string]string{"netns": path}); !ok || got != 0 {
		t.Errorf("named, success = %v (present %v), want 0", got, ok)
	}
	if _, ok := value(fams, "ipacct_ip_bytes_total", labels); ok {
		t.Errorf("named, the user's set was read")
	}
	if logs := named.logs.WaitFor("allow-user-namespaces", 5*time.Second); !strings.Contains(logs, "owned by a user namespace other than the exporter's") {
		t.Errorf("named: no failure naming the reason:\n%s", logs)
	}

	allowed := startExporter(t, nil, "--netns=/proc/[0-9]*/ns/net", "--no-collector.iptables", "--netns.allow-user-namespaces")
	_, fams = allowed.scrape(t)
	if got, ok := value(fams, "ipacct_ip_bytes_total", labels); !ok || got != bytes {
		t.Errorf("allowed: bytes %v (present %v), want %d", got, ok, uint64(bytes))
	}
	if got, ok := value(fams, "ipacct_ip_packets_total", labels); !ok || got != packets {
		t.Errorf("allowed: packets %v (present %v), want %d", got, ok, uint64(packets))
	}
}
