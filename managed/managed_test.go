package managed

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// exampleRuleset is the ruleset of rules.example.yaml.
func exampleRuleset(t *testing.T) *Ruleset {
	t.Helper()
	f, err := config.Load("../rules.example.yaml")
	return built(t, f, err)
}

func mustBuild(t *testing.T, yaml string) *Ruleset {
	t.Helper()
	f, err := config.Parse("rules.yaml", []byte(yaml))
	return built(t, f, err)
}

// built is the ruleset of a file that loaded with err.
func built(t *testing.T, f *config.File, err error) *Ruleset {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestDryRunText(t *testing.T) {
	rs := mustBuild(t, `
count: all
accounting:
  - tag: web4
    description: web
    local: [192.0.2.1, 198.51.100.0/24]
    remote_except: [10.2.3.0/24]
    protocol: tcp
    ports: [80, 8000-8080]
    interface: eth0
`)
	got := rs.Text()
	checkDryRun(t, got, 8, "2 locals × 2 port ranges × 2 directions",
		"table inet ipacct {\n\tchain managed-by-ipacct_exporter {\n\t}\n",
		"\t\tmeta nfproto ipv4 iifname \"eth0\" ip daddr 192.0.2.1 ip saddr != 10.2.3.0/24 meta l4proto tcp th dport 80 counter comment \"=web4_in= web\"\n",
		"\t\tmeta nfproto ipv4 oifname \"eth0\" ip saddr 198.51.100.0/24 ip daddr != 10.2.3.0/24 meta l4proto tcp th sport 8000-8080 counter comment \"=web4_out= web\"\n",
		"\tchain input {\n\t\ttype filter hook input priority filter -10; policy accept;\n\t\tjump web4_in-",
		"\tchain output {\n\t\ttype filter hook output priority filter -10; policy accept;\n\t\tjump web4_out-")
	if strings.Contains(got, "forward") {
		t.Errorf("no entry asked for forward:\n%s", got)
	}
}

// TestICMPEachFamily: protocol [icmp, icmpv6] counts ICMP in IPv4 and
// ICMPv6 in IPv6, with no rule for the pairs that cannot match.
func TestICMPEachFamily(t *testing.T) {
	got := mustBuild(t, "accounting:\n  - tag: ping\n    protocol: [icmp, icmpv6]\n").Text()
	checkDryRun(t, got, 4, "2 families × 2 directions",
		"\t\tmeta nfproto ipv4 meta l4proto icmp counter comment \"=ping_in=\"\n",
		"\t\tmeta nfproto ipv6 meta l4proto icmpv6 counter comment \"=ping_in=\"\n")
}

// checkDryRun checks that the dry run text got holds each of want, and
// rules counting rules (why says how they add up).
func checkDryRun(t *testing.T, got string, rules int, why string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("dry run lacks\n%s\nin\n%s", w, got)
		}
	}
	if n := strings.Count(got, "counter comment"); n != rules {
		t.Errorf("%d rules, want %s = %d:\n%s", n, why, rules, got)
	}
}

func TestChainNamesFollowRules(t *testing.T) {
	a := mustBuild(t, netnstest.SeedYAML)
	b := mustBuild(t, strings.Replace(netnstest.SeedYAML, "ports: [443]", "ports: [8443]", 1))
	same, differ := 0, 0
	for i := range a.Chains {
		if a.Chains[i].Name == b.Chains[i].Name {
			same++
		} else {
			differ++
		}
	}
	// web6ssl in and out changed; the 5 other chains did not.
	if same != 5 || differ != 2 {
		t.Errorf("%d chains kept their name and %d changed, want 5 and 2", same, differ)
	}
}

// conn returns a netlink connection to the namespace.
func conn(t *testing.T, ns *netnstest.NS) *nftables.Conn {
	t.Helper()
	c, closeConn, err := Dial(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeConn)
	return c
}

func apply(t *testing.T, ns *netnstest.NS, rs *Ruleset) Changes {
	t.Helper()
	ch, err := Apply(conn(t, ns), rs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// readTags reads the namespace's counters with the exporter's own collector,
// per tag token.
func readTags(t *testing.T, ns *netnstest.NS) map[string]netnstest.Counter {
	t.Helper()
	r, err := nft.New(nft.Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netnstest.Counter{}
	for _, rec := range r.Records {
		k := "=" + rec.Tag + "_" + string(rec.Direction) + "="
		out[k] = out[k].Add(netnstest.Counter{Packets: rec.Packets, Bytes: rec.Bytes})
	}
	return out
}

func TestApplyCountsTraffic(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ch := apply(t, ns, mustBuild(t, netnstest.SeedYAML))
	if !ch.Created || len(ch.Added) != 9 { // 7 entry chains, input and output
		t.Fatalf("first apply: %+v", ch)
	}
	sent := ns.SendSeedTraffic()
	got := readTags(t, ns)
	want := map[string]netnstest.Counter{
		"=web4_in=":      sent["=web4_down="],
		"=web4_out=":     sent["=web4_up="],
		"=unauthssh_in=": sent["=unauthssh="],
		"=web6_in=":      sent["=web6_down="],
		"=web6_out=":     sent["=web6_up="],
		"=web6ssl_in=":   sent["=web6ssl_down="],
		"=web6ssl_out=":  sent["=web6ssl_up="],
	}
	for k, w := range want {
		if got[k] != w || w.Packets == 0 {
			t.Errorf("%s: counted %+v, sent %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tags counted: %v", got)
	}
}

func TestReapplyKeepsCounters(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	apply(t, ns, mustBuild(t, netnstest.SeedYAML))
	ns.SendSeedTraffic()
	before := readTags(t, ns)
	listing := ns.Run("nft", "-a", "list", "table", "inet", "ipacct")

	// Unchanged: nothing happens in the kernel, not even new handles.
	if ch := apply(t, ns, mustBuild(t, netnstest.SeedYAML)); !ch.Empty() || ch.Unchanged != 7 {
		t.Errorf("re-apply of the same file changed %+v", ch)
	}
	if after := ns.Run("nft", "-a", "list", "table", "inet", "ipacct"); after != listing {
		t.Errorf("re-apply changed the table:\nbefore\n%s\nafter\n%s", listing, after)
	}

	// One entry changed: only its chains are replaced; the others count on.
	changed := strings.Replace(netnstest.SeedYAML, "ports: [443]", "ports: [8443]", 1)
	ch := apply(t, ns, mustBuild(t, changed))
	if len(ch.Added) != 2 || len(ch.Removed) != 2 || ch.Unchanged != 5 {
		t.Errorf("changing web6ssl: %+v", ch)
	}
	sent := ns.SendSeedTraffic()
	after := readTags(t, ns)
	for k, c := range map[string]netnstest.Counter{
		"=web4_in=": sent["=web4_down="], "=web4_out=": sent["=web4_up="], "=unauthssh_in=": sent["=unauthssh="],
		"=web6_in=": sent["=web6_down="], "=web6_out=": sent["=web6_up="],
	} {
		if want := before[k].Add(c); after[k] != want {
			t.Errorf("%s: %+v after the change, want %+v (the earlier count went on)", k, after[k], want)
		}
	}
	if after["=web6ssl_in="] != (netnstest.Counter{}) {
		t.Errorf("web6ssl now counts port 8443, which saw no traffic: %+v", after["=web6ssl_in="])
	}
}

func TestOtherRulesetsUntouched(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables-nft", "iptables-legacy", "iptables-legacy-save")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	// A firewall beside us: iptables-nft, iptables-legacy and native tables.
	ns.Firewall()
	ns.Run("iptables-nft", "-P", "FORWARD", "DROP")
	legacy := ns.LegacySave()
	ns.NFT(`table ip6 other {
	chain c {
	}
}
`)
	original := ns.Run("nft", "-s", "list", "ruleset")

	apply(t, ns, mustBuild(t, netnstest.SeedYAML))
	if got := ns.RulesetWithout("ipacct"); got != strings.TrimSuffix(original, "\n") && got != original {
		t.Errorf("apply changed other tables:\nbefore\n%s\nafter\n%s", original, got)
	}
	apply(t, ns, mustBuild(t, strings.Replace(netnstest.SeedYAML, "ports: [80]", "ports: [8080]", 1)))
	if got := ns.RulesetWithout("ipacct"); got != strings.TrimSuffix(original, "\n") && got != original {
		t.Errorf("re-apply changed other tables:\n%s", got)
	}
	if deleted, err := Cleanup(conn(t, ns), "ipacct"); err != nil || !deleted {
		t.Fatalf("cleanup: %v %v", deleted, err)
	}
	if got := ns.Run("nft", "-s", "list", "ruleset"); got != original {
		t.Errorf("after cleanup the ruleset differs:\nbefore\n%s\nafter\n%s", original, got)
	}
	if got := ns.LegacySave(); got != legacy {
		t.Errorf("the legacy tables changed:\nbefore\n%s\nafter\n%s", legacy, got)
	}
	if deleted, err := Cleanup(conn(t, ns), "ipacct"); err != nil || deleted {
		t.Errorf("second cleanup: %v %v, want nothing to do", deleted, err)
	}
}

func TestTableNotOurs(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT("table inet ipacct {\n\tchain mine {\n\t}\n}\n")
	before := ns.Run("nft", "-s", "list", "ruleset")
	if _, err := Apply(conn(t, ns), mustBuild(t, netnstest.SeedYAML)); !errors.Is(err, ErrNotOurs) {
		t.Errorf("apply over a foreign table: %v", err)
	}
	if _, err := Cleanup(conn(t, ns), "ipacct"); !errors.Is(err, ErrNotOurs) {
		t.Errorf("cleanup of a foreign table: %v", err)
	}
	if after := ns.Run("nft", "-s", "list", "ruleset"); after != before {
		t.Errorf("the foreign table changed:\n%s", after)
	}
}

// TestDryRunMatchesKernel loads the dry run's text with nft into one
// namespace and applies the same ruleset over netlink into another: nft
// must list both the same, so the text says what the expressions do.
func TestDryRunMatchesKernel(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rs := mustBuild(t, netnstest.SeedYAML+`
  - tag: gw
    hooks: [forward]
    local: [198.51.100.0/24, 2001:db8:beef::/48]
    remote: [203.0.113.0/24, 2001:db8:1::/48]
    interface: eth*
  - tag: mail
    direction: out
    protocol: [tcp, udp]
    ports: [25, 1000-2000]
    family: ipv6
  - tag: ping
    protocol: icmp
    family: ipv4
  - tag: ping46
    protocol: [icmp, icmpv6]
`)
	a := dryRunListing(t, rs)
	if !strings.Contains(a, `iifname "eth*"`) || !strings.Contains(a, "ip6 saddr 2001:db8:beef::/48") {
		t.Errorf("listing lacks expected matches:\n%s", a)
	}
}

// dryRunListing applies rs over netlink in one namespace and loads its
// dry-run text with nft in another; both must list the same ruleset, which
// it returns.
func dryRunListing(t *testing.T, rs *Ruleset) string {
	t.Helper()
	viaNetlink := netnstest.New(t)
	apply(t, viaNetlink, rs)
	viaText := netnstest.New(t)
	viaText.NFT(rs.Text())
	a := viaNetlink.Run("nft", "-s", "list", "ruleset")
	b := viaText.Run("nft", "-s", "list", "ruleset")
	if a != b {
		t.Errorf("netlink and dry-run text differ:\n--- applied over netlink\n%s\n--- loaded from the dry run\n%s", a, b)
	}
	return a
}

// nftShortForms are the forms in which nft 1.0.6 lists the rules of the dry
// run (README, "Check first"): it leaves out a meta nfproto that a later
// match implies, writes meta l4proto tcp th dport (or tcp dport) as tcp
// dport and icmpv6 as ipv6-icmp, and spaces the priority. Each pattern
// turns both forms into one.
var nftShortForms = []struct {
	pattern *regexp.Regexp
	to      string
}{
	{regexp.MustCompile(`meta nfproto ipv[46] `), ""},
	{regexp.MustCompile(`meta l4proto (tcp|udp) (?:th|tcp|udp) (sport|dport)`), "$1 $2"},
	{regexp.MustCompile(`meta l4proto icmpv6`), "meta l4proto ipv6-icmp"},
	{regexp.MustCompile(`priority filter ([+-])(\d+)`), "priority filter $1 $2"},
}

// TestDryRunAgainstNftListing: the dry run is what nft lists of the table
// the exporter installs, but for the short forms README names.
func TestDryRunAgainstNftListing(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rsExample := exampleRuleset(t)
	short := func(s string) string {
		for _, f := range nftShortForms {
			s = f.pattern.ReplaceAllString(s, f.to)
		}
		return s
	}
	for name, rs := range map[string]*Ruleset{"example": rsExample, "match": mustBuild(t, matchYAML), "addresses": mustBuild(t, serversYAML)} {
		ns := netnstest.New(t)
		apply(t, ns, rs)
		listing := ns.Run("nft", "-s", "list", "table", "inet", "ipacct")
		if a, b := short(rs.Text()), short(listing); a != b {
			t.Errorf("%s: the dry run and nft's listing differ beyond the short forms:\n--- dry run\n%s\n--- nft -s list table inet ipacct\n%s", name, a, b)
		}
	}
}
