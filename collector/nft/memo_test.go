package nft

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// fnvContent is a rule's content as the state files of earlier versions
// hold it: FNV-1a of the user data, then of each expression whole, or of
// only its name for a stateful one.
func fnvContent(t *testing.T, msg []byte) uint64 {
	t.Helper()
	var udata, exprs []byte
	a := attrs{b: msg}
	for a.next() {
		switch a.typ {
		case unix.NFTA_RULE_EXPRESSIONS:
			exprs = a.val
		case unix.NFTA_RULE_USERDATA:
			udata = a.val
		}
	}
	h := fnv.New64a()
	h.Write(udata)
	list := attrs{b: exprs}
	for list.next() {
		name, _, err := parseExpr(list.val)
		if err != nil {
			t.Fatal(err)
		}
		switch string(name) {
		case "counter", "quota", "last", "limit", "connlimit":
			h.Write(name)
		default:
			h.Write(list.val)
		}
	}
	return h.Sum64()
}

// TestContentIsStable: a rule's content is what earlier versions hashed,
// so that the IDs in a state file still name the same rules.
func TestContentIsStable(t *testing.T) {
	msgs := [][]byte{
		ruleMessage("filter", "INPUT", userdata.AppendString(nil, userdata.TypeComment, "=a_in= x"), 3, 300, ""),
		ruleMessage("filter", "INPUT", nil, 1, 2, "=web4_down= via xt"),
	}
	for _, m := range benchRuleDump(2) {
		msgs = append(msgs, m.attrs)
	}
	for i, msg := range msgs {
		r, err := parseRule(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := contentOf(&r), fnvContent(t, msg); got != want {
			t.Errorf("rule %d: content %x, want %x", i, got, want)
		}
	}
}

// memoRule is a native rule "ip saddr ADDR counter comment COMMENT" under
// a handle, with its counter's values.
func memoRule(t *testing.T, handle uint64, addr byte, comment string, packets uint64) rule {
	t.Helper()
	exprs := append(payloadCmp(12, [4]byte{10, 0, 0, addr}), counterExpr(packets, 100*packets)...)
	r, err := parseRule(benchRule("t", "c", handle, exprs, userdata.AppendString(nil, userdata.TypeComment, comment)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMemoFollowsContent reads rules through a memo, read after read, as
// they change under their handles, are inserted, moved and deleted: each
// read's content of each rule is what hashing it afresh gives.
func TestMemoFollowsContent(t *testing.T) {
	type spec struct {
		handle uint64
		addr   byte
	}
	reads := [][]spec{
		{{4, 1}, {5, 2}, {6, 3}},
		{{4, 1}, {5, 2}, {6, 3}},           // only the counters grew
		{{4, 1}, {5, 9}, {6, 3}},           // nft replace rule … handle 5
		{{7, 4}, {4, 1}, {5, 9}, {6, 3}},   // inserted at the top
		{{7, 4}, {5, 9}, {4, 1}},           // 4 moved, 6 deleted (a handle is never reused)
		{{7, 4}, {5, 2}, {4, 1}, {8, 3}},   // 5 replaced back
		{{7, 4}, {5, 2}, {4, 1}, {8, 3}},   // nothing changed
		{{9, 4}, {10, 2}, {11, 1}, {8, 3}}, // the same rules made again
	}
	m := &ruleMemo{}
	for n, rules := range reads {
		for _, s := range rules {
			r := memoRule(t, s.handle, s.addr, "=a_in=", uint64(n+1))
			if got, want := m.content(&r), contentOf(&r); got != want {
				t.Errorf("read %d, handle %d: content %x, want %x", n, s.handle, got, want)
			}
		}
		m.done()
		if len(m.last) != len(rules) {
			t.Errorf("read %d: the memo keeps %d rules, want %d", n, len(m.last), len(rules))
		}
	}
}

// TestMemoIsUsed: a rule takes its content from the memo when the last
// read had a rule of its check, at its place or elsewhere, and only then.
func TestMemoIsUsed(t *testing.T) {
	r := memoRule(t, 4, 1, "=a_in=", 1)
	const marked = 0x5eed
	for _, last := range [][]memoEntry{
		{{check: r.check, content: marked}},
		{{check: r.check + 1, content: 1}, {check: r.check, content: marked}},
	} {
		m := &ruleMemo{last: last}
		if got := m.content(&r); got != marked {
			t.Errorf("same check in %v: content %x, want the memo's %x", last, got, marked)
		}
	}
	m := &ruleMemo{last: []memoEntry{{check: r.check + 1, content: marked}}}
	if got, want := m.content(&r), contentOf(&r); got != want {
		t.Errorf("other check: content %x, want %x", got, want)
	}
	// The check covers what the content covers, and not the counter.
	if grown := memoRule(t, 4, 1, "=a_in=", 2); grown.check != r.check {
		t.Errorf("the check changed with the counter's values")
	}
	for _, other := range []rule{memoRule(t, 4, 2, "=a_in=", 1), memoRule(t, 4, 1, "=a_in= x", 1)} {
		if other.check == r.check {
			t.Errorf("the check did not change with the rule's expressions or comment")
		}
	}
}

// TestReplaceRuleFollowsContent: "nft replace rule" keeps a rule's handle
// and changes what it matches; the next read's ID follows the new rule, as
// a collector's first read gives it, while the handle stays.
func TestReplaceRuleFollowsContent(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	ns.NFT(`table ip t {
	chain c {
		ip saddr 10.0.0.1 counter comment "=a_in="
		ip saddr 10.0.0.2 counter comment "=b_in="
	}
}`)
	c := New(Options{NetNS: ns.Path()})
	read := func(c *Collector) map[string]collector.Record {
		t.Helper()
		r, err := c.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		recs := map[string]collector.Record{}
		for _, rec := range r.Records {
			recs[rec.Tag] = rec
		}
		if len(recs) != 2 {
			t.Fatalf("records %+v, want a and b", r.Records)
		}
		return recs
	}
	first, again := read(c), read(c)
	for tg := range first {
		if first[tg].ID != again[tg].ID || first[tg].Handle != again[tg].Handle {
			t.Errorf("%s read again: %+v, then %+v", tg, first[tg], again[tg])
		}
	}
	out := ns.Run("nft", "-a", "list", "chain", "ip", "t", "c")
	handle := ""
	for line := range strings.Lines(out) {
		if _, h, ok := strings.Cut(line, `"=a_in=" # handle `); ok {
			handle = strings.TrimSpace(h)
		}
	}
	if _, err := strconv.ParseUint(handle, 10, 64); err != nil {
		t.Fatalf("no handle of =a_in= in %q", out)
	}
	ns.Run("nft", "replace", "rule", "ip", "t", "c", "handle", handle, "ip", "saddr", "10.0.0.3", "counter", "comment", `"=a_in="`)
	replaced, fresh := read(c), read(New(Options{NetNS: ns.Path()}))
	if replaced["a"].Handle != first["a"].Handle {
		t.Errorf("replaced rule's handle %x, want %x", replaced["a"].Handle, first["a"].Handle)
	}
	if replaced["a"].ID == first["a"].ID {
		t.Errorf("replaced rule kept its ID %x", first["a"].ID)
	}
	for tg := range fresh {
		if replaced[tg].ID != fresh[tg].ID {
			t.Errorf("%s: ID %x after the replace, a first read says %x", tg, replaced[tg].ID, fresh[tg].ID)
		}
	}
	if replaced["b"].ID != first["b"].ID {
		t.Errorf("b: ID %x, was %x", replaced["b"].ID, first["b"].ID)
	}
}
