package managed

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// recorder is a netlink connection to no kernel, through google/nftables'
// test dialer (as its internal/nftest.Recorder, which other modules cannot
// import): it keeps what each sendmsg carried and acknowledges every
// message, but answers the one that refuse names with ENOENT, as the
// kernel does a rule that jumps to a chain it does not have.
type recorder struct {
	sends  [][]netlink.Message
	refuse string // a message as described by describe
}

func (r *recorder) conn(t *testing.T) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil // a receive with nothing sent
		}
		r.sends = append(r.sends, req)
		var replies []netlink.Message
		for _, m := range req {
			if m.Header.Flags&netlink.Acknowledge == 0 {
				continue
			}
			errno := int32(0)
			if r.refuse != "" && describe(m) == r.refuse {
				errno = -int32(unix.ENOENT)
			}
			replies = append(replies, netlink.Message{
				Header: netlink.Header{Type: netlink.Error, Sequence: m.Header.Sequence, PID: m.Header.PID},
				Data:   nlenc.Int32Bytes(errno),
			})
		}
		return replies, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// messages checks that everything was sent in one batch, every message of
// it about table inet ipacct, and returns them as describe writes them.
func (r *recorder) messages(t *testing.T) []string {
	t.Helper()
	if len(r.sends) != 1 {
		t.Fatalf("%d sendmsg calls, want one batch", len(r.sends))
	}
	batch := r.sends[0]
	if len(batch) < 2 || describe(batch[0]) != "batch begin" || describe(batch[len(batch)-1]) != "batch end" {
		t.Fatalf("not one batch: %q ... %q", describe(batch[0]), describe(batch[len(batch)-1]))
	}
	var list []string
	for _, m := range batch[1 : len(batch)-1] {
		table, family := attr(m, 1), m.Data[0]
		if table != "ipacct" || family != unix.NFPROTO_INET {
			t.Errorf("%s is about table %d %q, not inet ipacct", describe(m), family, table)
		}
		list = append(list, describe(m))
	}
	return list
}

// msgNames are the nftables messages a plan sends, and the attribute that
// names what each is about.
var msgNames = map[uint16]struct {
	verb string
	attr uint16
}{
	unix.NFT_MSG_NEWTABLE: {"add table", unix.NFTA_TABLE_NAME},
	unix.NFT_MSG_NEWCHAIN: {"add chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_DELCHAIN: {"delete chain", unix.NFTA_CHAIN_NAME},
	unix.NFT_MSG_NEWRULE:  {"add rule to", unix.NFTA_RULE_CHAIN},
	// Without a rule handle: every rule of the chain.
	unix.NFT_MSG_DELRULE:      {"flush chain", unix.NFTA_RULE_CHAIN},
	unix.NFT_MSG_NEWSET:       {"add set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_DELSET:       {"delete set", unix.NFTA_SET_NAME},
	unix.NFT_MSG_NEWSETELEM:   {"add elements to", unix.NFTA_SET_ELEM_LIST_SET},
	unix.NFT_MSG_DELSETELEM:   {"delete elements from", unix.NFTA_SET_ELEM_LIST_SET},
	unix.NFT_MSG_DELOBJ:       {"delete object", unix.NFTA_OBJ_NAME},
	unix.NFT_MSG_DELFLOWTABLE: {"delete flowtable", 2}, // NFTA_FLOWTABLE_NAME
}

// describe says what a netlink message asks of nftables: "add chain input".
func describe(m netlink.Message) string {
	switch t := uint16(m.Header.Type); t {
	case unix.NFNL_MSG_BATCH_BEGIN:
		return "batch begin"
	case unix.NFNL_MSG_BATCH_END:
		return "batch end"
	default:
		if t>>8 != unix.NFNL_SUBSYS_NFTABLES {
			return fmt.Sprintf("message %#x", t)
		}
		if n, ok := msgNames[t&0xff]; ok {
			return n.verb + " " + attr(m, n.attr)
		}
		return fmt.Sprintf("nftables message %d", t&0xff)
	}
}

// attr is the string attribute typ of an nftables message, after its
// nfgenmsg header.
func attr(m netlink.Message, typ uint16) string {
	if len(m.Data) < 4 {
		return ""
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.String()
		}
	}
	return ""
}

// commitYAML is small enough to read its whole transaction: one entry, and
// one per-address set.
const commitYAML = `
accounting:
  - tag: web4
    local: [192.0.2.1]
    protocol: udp
    ports: [80]
addresses:
  - tag: srv
    direction: in
    hooks: [input]
    networks: [192.0.2.0/30]
    size: 4
`

// TestCommitMessages: the netlink messages that commit sends for a plan,
// without a kernel. Each plan goes in one batch, about the managed table
// only; a start creates it whole, in an order the kernel accepts (a set
// before the chain that adds to it, a chain before the one that jumps to
// it); a reload flushes what changes before anything is made and deletes
// what goes last, and sends nothing about a kept chain or set, which keep
// their counters; a plan without changes sends nothing.
func TestCommitMessages(t *testing.T) {
	rs := mustBuild(t, commitYAML)
	in, out, set := rs.Chains[0].Name, rs.Chains[1].Name, rs.Sets[0].Name
	setChain, addrBase := rs.Chains[2].Name, rs.AddrBase[0].Name
	changed := mustBuild(t, strings.Replace(commitYAML, "ports: [80]", "ports: [8080]", 1))
	newIn, newOut := changed.Chains[0].Name, changed.Chains[1].Name

	for _, c := range []struct {
		name string
		rs   *Ruleset
		have *observed
		want []string
	}{
		{name: "start", rs: rs, want: []string{
			"add table ipacct",
			"add set " + set,
			"add chain " + MarkerChain,
			"add chain " + in, "add rule to " + in,
			"add chain " + out, "add rule to " + out,
			"add chain " + setChain, "add rule to " + setChain, "add rule to " + setChain,
			"add chain input", "add rule to input",
			"add chain output", "add rule to output",
			"add chain " + addrBase, "add rule to " + addrBase,
		}},
		{name: "reload", rs: changed, have: observedFresh(rs, withElements), want: []string{
			"flush chain input", "flush chain output",
			"flush chain " + in, "flush chain " + out,
			"add chain " + newIn, "add rule to " + newIn,
			"add chain " + newOut, "add rule to " + newOut,
			"add rule to input", "add rule to output",
			"delete chain " + in, "delete chain " + out,
		}},
		{name: "unchanged", rs: rs, have: observedFresh(rs, withElements)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := plan(c.rs, c.have, false)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			if err := commit(rec.conn(t), p); err != nil {
				t.Fatal(err)
			}
			if c.want == nil {
				if len(rec.sends) != 0 {
					t.Errorf("an empty plan sent %d batches", len(rec.sends))
				}
				return
			}
			got := rec.messages(t)
			if !slices.Equal(got, c.want) {
				t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, k := range p.kept() {
				name := strings.SplitN(k, " ", 2)[1]
				for _, m := range got {
					if strings.HasSuffix(m, " "+name) && !strings.HasPrefix(m, "delete elements from ") {
						t.Errorf("%s is kept, but the batch has %q", k, m)
					}
				}
			}
		})
	}
}

// TestCommitStraysAndForeign: a reload drops from a kept set only the
// addresses outside its networks, and deletes what another program added
// to the table, last.
func TestCommitStraysAndForeign(t *testing.T) {
	rs := mustBuild(t, commitYAML)
	set := rs.Sets[0].Name
	have := observedFresh(rs, withElements)
	have.elements[set] = [][]byte{{192, 0, 2, 1}, {192, 0, 2, 9}, {198, 51, 100, 7}}
	table := rs.tableOf()
	have.chains["mine"] = &observedChain{chain: &nftables.Chain{Name: "mine", Table: table}}
	have.sets["myset"] = &nftables.Set{Table: table, Name: "myset", KeyType: nftables.TypeIPAddr}
	have.objects = []*nftables.NamedObj{{Table: table, Name: "mycounter", Type: nftables.ObjTypeCounter}}
	p, err := plan(rs, have, false)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := commit(rec.conn(t), p); err != nil {
		t.Fatal(err)
	}
	want := []string{"flush chain mine", "delete elements from " + set, "delete chain mine", "delete set myset", "delete object mycounter"}
	if got := rec.messages(t); !slices.Equal(got, want) {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(p.sets[0].strays); n != 2 {
		t.Errorf("%d strays, want 2 (192.0.2.9 and 198.51.100.7)", n)
	}
}

// TestCommitRefused: commit reports the kernel's refusal of a message in
// the batch, which the kernel then applies none of (TestCommitAllOrNothing
// shows that with a kernel); and never sends the plan of a cheap check.
func TestCommitRefused(t *testing.T) {
	rs := mustBuild(t, commitYAML)
	p, err := plan(rs, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{refuse: "add rule to input"}
	err = commit(rec.conn(t), p)
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "applying table inet ipacct") {
		t.Errorf("commit of a refused batch: %v", err)
	}
	if got := rec.messages(t); !slices.Contains(got, "add rule to output") {
		t.Errorf("the batch stopped at the refusal: %q", got)
	}

	have := observedFresh(rs, structure)
	delete(have.chains, "input")
	if p, err = plan(rs, have, false); err != nil {
		t.Fatal(err)
	}
	rec = &recorder{}
	if err := commit(rec.conn(t), p); !errors.Is(err, errCheckOnly) || len(rec.sends) != 0 {
		t.Errorf("commit of a cheap check's plan: %v, %d batches sent", err, len(rec.sends))
	}
}

// TestCommitAllOrNothing: a batch that the kernel refuses in its middle
// leaves the table as it was, counters and all.
func TestCommitAllOrNothing(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, netnstest.SeedAddrs...)
	rs := mustBuild(t, netnstest.SeedYAML)
	apply(t, ns, rs)
	ns.SendSeedTraffic()
	before := ns.Run("nft", "list", "table", "inet", "ipacct")
	bad := mustBuild(t, strings.Replace(netnstest.SeedYAML, "ports: [22]", "ports: [2222]", 1))
	bad.Base[len(bad.Base)-1].Jumps = append(bad.Base[len(bad.Base)-1].Jumps, "no-such-chain")
	if _, err := Apply(conn(t, ns), bad); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("apply of a batch with a jump to no chain: %v", err)
	}
	if after := ns.Run("nft", "list", "table", "inet", "ipacct"); after != before {
		t.Errorf("a refused batch changed the table:\nbefore\n%s\nafter\n%s", before, after)
	}
}
