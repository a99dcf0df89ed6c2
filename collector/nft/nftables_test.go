package nft

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
	"github.com/ipacct/ipacct_exporter/tag"
)

// byTag sums a reading's records per tag and direction.
func byTag(r collector.Reading) map[string]netnstest.Counter {
	sums := map[string]netnstest.Counter{}
	for _, rec := range r.Records {
		k := rec.Tag + "/" + string(rec.Direction)
		sums[k] = sums[k].Add(netnstest.Counter{Packets: rec.Packets, Bytes: rec.Bytes})
	}
	return sums
}

// canonical re-keys counters per tag token ("=web4_down=") by tag and
// direction ("web4/in"), dropping tokens that are not valid tags.
func canonical(perToken map[string]netnstest.Counter) map[string]netnstest.Counter {
	out := map[string]netnstest.Counter{}
	for tok, c := range perToken {
		if tg, err := tag.Parse(tok); err == nil {
			k := tg.Name + "/" + string(tg.Direction)
			out[k] = out[k].Add(c)
		}
	}
	return out
}

func compare(t *testing.T, what string, got, want map[string]netnstest.Counter) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s: got %+v, want %+v", what, k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s %+v", what, k, got[k])
		}
	}
}

func TestSeedRulesNative(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	sent := ns.SendSeedTraffic()
	delete(sent, "=q_in=") // no native rule has this tag

	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := byTag(r)
	compare(t, "against traffic sent", got, canonical(sent))
	compare(t, "against nft -j list ruleset", got, canonical(ns.NFTCounters()))
	if len(r.Invalid) != 1 || r.Invalid[0].Comment != "=bad tag= not counted" || r.Invalid[0].Where != "ip acct4 in" {
		t.Errorf("invalid comments: %+v", r.Invalid)
	}
	// Families and summing are the exporter's; here each rule is a record.
	fam := map[string]family.Table{}
	n := map[string]int{}
	for _, rec := range r.Records {
		fam[rec.Tag] = rec.Family
		n[rec.Tag+string(rec.Direction)]++
	}
	if fam["web4"] != family.IP || fam["web6"] != family.IP6 || fam["unauthssh"] != family.IP {
		t.Errorf("families: %v", fam)
	}
	if n["web4in"] != 2 || n["web4out"] != 2 || n["unauthsshnone"] != 1 {
		t.Errorf("records per tag and direction: %v", n)
	}
	if r.Records[0].Description != "Unauthorized SSH traffic received" {
		t.Errorf("first record: %+v", r.Records[0])
	}
}

func TestSeedRulesIptablesNFT(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-nft", "ip6tables-nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	for _, cmd := range netnstest.SeedXtables("iptables-nft", "ip6tables-nft") {
		ns.Run(cmd[0], cmd[1:]...)
	}
	// Like seed 003, ACCT4 is jumped to from INPUT and OUTPUT, and traffic
	// between local addresses passes both: the kernel counts it twice.
	sent := ns.SendSeedTraffic()
	for k, v := range sent {
		sent[k] = v.Add(v)
	}

	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := byTag(r)
	compare(t, "against traffic sent", got, canonical(sent))
	kernel := ns.SaveCounters("iptables-nft-save")
	for k, v := range ns.SaveCounters("ip6tables-nft-save") {
		kernel[k] = v
	}
	compare(t, "against iptables-nft-save -c", got, canonical(kernel))
	if len(r.Invalid) != 1 || !strings.HasPrefix(r.Invalid[0].Comment, "=toolong") || r.Invalid[0].Where != "ip filter ACCT4" {
		t.Errorf("invalid comments: %+v", r.Invalid)
	}
	for _, rec := range r.Records {
		if rec.Tag == "q" && rec.Description != `say "hi" \ ünïcödé` {
			t.Errorf("description of q: %q", rec.Description)
		}
	}
}

func TestNamedCountersAndEdgeCases(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(`
table inet t {
	counter c_in {
		comment "=objtag_in= named counter"
	}
	counter plain {
	}
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 53 counter name "c_in"
		udp dport 53 counter comment "=dns= second rule, same tag"
		udp dport 53 counter comment "=bad tag!= x"
		udp dport 53 comment "=nocounter= y"
	}
}
`)
	// nft's own syntax has no escape for '"': JSON does.
	ns.NFTJSON(`{"nftables": [{"insert": {"rule": {"family": "inet", "table": "t", "chain": "in", "index": 0,
		"comment": "=dns= quotes \" backslash \\ ünïcödé",
		"expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"counter": null}]}}}]}`)
	sent := ns.SendUDP("198.51.100.1:40053", "192.0.2.1:53", 64, 11)
	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []collector.Record{
		{Tag: "dns", Direction: tag.None, Family: family.Inet, Description: `quotes " backslash \ ünïcödé`, Packets: 11, Bytes: sent},
		{Tag: "dns", Direction: tag.None, Family: family.Inet, Description: "second rule, same tag", Packets: 11, Bytes: sent},
		{Tag: "objtag", Direction: tag.In, Family: family.Inet, Description: "named counter", Packets: 11, Bytes: sent},
	}
	if len(r.Records) != len(want) {
		t.Fatalf("records: got %+v, want %+v", r.Records, want)
	}
	ids := map[uint64]bool{}
	for i := range want {
		got := r.Records[i]
		// Identities: present, distinct, and with a handle from the kernel.
		if got.ID == 0 || ids[got.ID] || got.Handle == 0 {
			t.Errorf("record %d: ID %x, handle %d: want a distinct ID and a handle", i, got.ID, got.Handle)
		}
		ids[got.ID] = true
		got.ID, got.Handle = 0, 0
		if got != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, got, want[i])
		}
	}
	if len(r.Invalid) != 2 || !strings.Contains(r.Invalid[0].Err.Error(), `' '`) ||
		!strings.Contains(r.Invalid[1].Err.Error(), "no counter") || r.Invalid[0].Where != "inet t in" {
		t.Errorf("invalid: %+v", r.Invalid)
	}
	if got := ns.NFTCounters()["=objtag_in="]; got.Packets != 11 || got.Bytes != sent {
		t.Errorf("nft -j says the named counter holds %+v, want 11 packets, %d bytes", got, sent)
	}
}

func TestTableDeletedBetweenReads(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	ns.NFT(netnstest.SeedNFT)
	b := New(Options{NetNS: ns.Path()})
	r, err := b.Read(context.Background())
	if err != nil || len(r.Records) != 9 { // the 9 tagged rules of acct4 and acct6
		t.Fatalf("first read: %d records, %v", len(r.Records), err)
	}
	ns.Run("nft", "delete", "table", "ip", "acct4")
	r, err = b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 4 {
		t.Errorf("after deleting acct4: %d records, want the 4 of acct6: %+v", len(r.Records), r.Records)
	}
	for _, rec := range r.Records {
		if rec.Family != family.IP6 {
			t.Errorf("record from a deleted table: %+v", rec)
		}
	}
}

func TestDumpBufferSizes(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	var rs strings.Builder
	rs.WriteString("table inet big {\n chain c {\n")
	for i := 0; i < 2000; i++ {
		rs.WriteString(" udp dport 9 counter comment \"=bulk_out= a rule with a long enough description to fill chunks\"\n")
	}
	rs.WriteString(" }\n}\n")
	ns.NFT(rs.String())
	// Dumps in page-sized, default and oversized chunks read the same.
	for _, size := range []int{4096, DefaultDumpBufferSize, 1 << 20} {
		r, err := New(Options{NetNS: ns.Path(), DumpBufferSize: size}).Read(context.Background())
		if err != nil {
			t.Fatalf("buffer %d: %v", size, err)
		}
		if len(r.Records) != 2000 {
			t.Errorf("buffer %d: %d records, want 2000", size, len(r.Records))
		}
	}
}

func TestMissingNamespace(t *testing.T) {
	_, err := New(Options{NetNS: "/run/netns/ipacct-does-not-exist"}).Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Errorf("got %v, want a network namespace error", err)
	}
}

// TestReadIsOneRuleset: a transaction every few milliseconds changes the
// tagged rule of two tables together while reads run, which dump the two
// tables on two sockets at once. Every read that succeeds saw one ruleset:
// both tables at the same version.
func TestReadIsOneRuleset(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	// Untagged filler makes each table's dump take a while.
	var filler strings.Builder
	for _, table := range []string{"a", "b"} {
		fmt.Fprintf(&filler, "table inet %s {\n\tchain fill {\n", table)
		for i := range 2000 {
			fmt.Fprintf(&filler, "\t\tip saddr 10.1.%d.%d counter\n", i>>8, i&255)
		}
		filler.WriteString("\t}\n\tchain c {\n\t\tcounter comment \"=v0_in=\"\n\t}\n}\n")
	}
	ns.NFT(filler.String())

	conn := ns.Conn()
	var chains []*nftables.Chain
	for _, name := range []string{"a", "b"} {
		chains = append(chains, &nftables.Chain{Name: "c", Table: &nftables.Table{Name: name, Family: nftables.TableFamilyINet}})
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 1
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range chains {
				conn.FlushChain(c)
				conn.AddRule(&nftables.Rule{Table: c.Table, Chain: c, Exprs: []expr.Any{&expr.Counter{}},
					UserData: userdata.AppendString(nil, userdata.TypeComment, fmt.Sprintf("=v%d_in=", n))})
			}
			if err := conn.Flush(); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(3 * time.Millisecond)
		}
	}()
	b := New(Options{NetNS: ns.Path()})
	read, interrupted := 0, 0
	deadline := time.Now().Add(5 * time.Second)
	for read < 200 && time.Now().Before(deadline) {
		r, err := b.Read(context.Background())
		if errors.Is(err, errDumpInterrupted) {
			interrupted++ // three tries, each while the ruleset changed
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		read++
		if len(r.Records) != 2 || r.Records[0].Tag != r.Records[1].Tag {
			t.Fatalf("read %d mixes two rulesets: %+v", read, r.Records)
		}
	}
	close(stop)
	changes := <-done
	t.Logf("%d reads, %d interrupted three times, while %d transactions ran", read, interrupted, changes)
	if read < 10 || changes < 100 {
		t.Errorf("%d reads while %d transactions ran: too few to show anything", read, changes)
	}
}
