package nft

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/google/nftables/userdata"

	"github.com/ipacct/ipacct_exporter/collector"
)

func TestCommentFromUserData(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		ok   bool
	}{
		{"nft comment", userdata.AppendString(nil, userdata.TypeComment, "=a= b"), "=a= b", true},
		{"after another entry", userdata.AppendString(userdata.AppendUint32(nil, 3, 7), userdata.TypeComment, "=x="), "=x=", true},
		{"no comment", userdata.AppendUint32(nil, 3, 7), "", false},
		{"empty", nil, "", false},
		{"length past the end", []byte{0, 200, 'a'}, "", false},
		{"truncated header", []byte{0}, "", false},
		{"no terminating NUL", []byte{0, 3, 'a', 'b', 'c'}, "abc", true},
	} {
		b, ok := commentFromUserData(tc.in, udataComment)
		if got := string(b); got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzCommentFromUserData(f *testing.F) {
	f.Add(userdata.AppendString(nil, userdata.TypeComment, "=web4_down= x"))
	f.Add([]byte{0, 200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := commentFromUserData(b, udataComment)
		if !ok && len(c) != 0 {
			t.Errorf("no comment but %q", c)
		}
		if len(c) > len(b) {
			t.Errorf("comment longer than its user data")
		}
	})
}

// FuzzParseRule feeds arbitrary bytes as a rule message's attributes: the
// kernel's data comes from whatever tool wrote the rule, so the decoder must
// fail cleanly, never panic or read past its input.
func FuzzParseRule(f *testing.F) {
	f.Add(ruleMessage("filter", "INPUT", userdata.AppendString(nil, userdata.TypeComment, "=a_in= x"), 3, 300, ""))
	f.Add(ruleMessage("filter", "INPUT", nil, 1, 2, "=web4_down= via xt"))
	f.Add([]byte{4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRule(b)
		if err == nil && r.hasComment && len(r.comment) > len(b) {
			t.Errorf("comment longer than the message")
		}
		_, _ = parseCounterObject(b)
	})
}

// ruleMessage builds the attributes of an NFT_MSG_NEWRULE message the way
// the kernel lays them out, with a counter expression and, if xtComment is
// not empty, an xt comment match.
func ruleMessage(table, chain string, udata []byte, packets, byteCount uint64, xtComment string) []byte {
	var exprs []byte
	counter := attr(unix.NFTA_COUNTER_BYTES, be(byteCount))
	counter = append(counter, attr(unix.NFTA_COUNTER_PACKETS, be(packets))...)
	exprs = append(exprs, attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, append(attr(unix.NFTA_EXPR_NAME, []byte("counter\x00")), attr(unix.NLA_F_NESTED|unix.NFTA_EXPR_DATA, counter)...))...)
	if xtComment != "" {
		info := make([]byte, 256)
		copy(info, xtComment)
		match := append(attr(unix.NFTA_MATCH_NAME, []byte("comment\x00")), attr(unix.NFTA_MATCH_REV, []byte{0, 0, 0, 0})...)
		match = append(match, attr(unix.NFTA_MATCH_INFO, info)...)
		exprs = append(exprs, attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, append(attr(unix.NFTA_EXPR_NAME, []byte("match\x00")), attr(unix.NLA_F_NESTED|unix.NFTA_EXPR_DATA, match)...))...)
	}
	b := attr(unix.NFTA_RULE_TABLE, []byte(table+"\x00"))
	b = append(b, attr(unix.NFTA_RULE_CHAIN, []byte(chain+"\x00"))...)
	b = append(b, attr(unix.NLA_F_NESTED|unix.NFTA_RULE_EXPRESSIONS, exprs)...)
	if udata != nil {
		b = append(b, attr(unix.NFTA_RULE_USERDATA, udata)...)
	}
	return b
}

func attr(typ uint16, val []byte) []byte {
	b := make([]byte, 4, 4+len(val)+3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     []byte
		comment string
		p, b    uint64
	}{
		{"native", ruleMessage("acct4", "in", userdata.AppendString(nil, userdata.TypeComment, "=web4_down= x"), 5, 1140, ""), "=web4_down= x", 5, 1140},
		{"iptables-nft", ruleMessage("filter", "ACCT4", nil, 7, 2200, "=web4_up= dummy"), "=web4_up= dummy", 7, 2200},
		{"user data wins", ruleMessage("filter", "ACCT4", userdata.AppendString(nil, userdata.TypeComment, "=a="), 1, 2, "=b="), "=a=", 1, 2},
	} {
		r, err := parseRule(tc.msg)
		if err != nil || !r.hasComment || !r.hasCounter || string(r.comment) != tc.comment || r.packets != tc.p || r.bytes != tc.b || string(r.chain) == "" {
			t.Errorf("%s: got %+v, %v", tc.name, r, err)
		}
	}
	// Every truncation of a valid message fails cleanly or decodes whole
	// attributes only: cut before the user data, the xt comment remains.
	full := ruleMessage("filter", "INPUT", userdata.AppendString(nil, userdata.TypeComment, "=x= y"), 1, 2, "=z=")
	for i := range full {
		if r, err := parseRule(full[:i]); err == nil && r.hasComment && string(r.comment) != "=x= y" && string(r.comment) != "=z=" {
			t.Errorf("truncated at %d: %+v", i, r)
		}
	}
}

// setElementsMessage builds an NFT_MSG_NEWSETELEM message's attributes with
// one element per key, each with a counter: under NFTA_SET_ELEM_EXPR, or
// with a second expression under NFTA_SET_ELEM_EXPRESSIONS.
func setElementsMessage(several bool, keys ...[]byte) []byte {
	var list []byte
	for i, k := range keys {
		counter := attr(unix.NFTA_COUNTER_BYTES, be(uint64(100*(i+1))))
		counter = append(counter, attr(unix.NFTA_COUNTER_PACKETS, be(uint64(i+1)))...)
		ce := append(attr(unix.NFTA_EXPR_NAME, []byte("counter\x00")), attr(unix.NLA_F_NESTED|unix.NFTA_EXPR_DATA, counter)...)
		el := attr(unix.NLA_F_NESTED|unix.NFTA_SET_ELEM_KEY, attr(unix.NFTA_DATA_VALUE, k))
		if several {
			quota := append(attr(unix.NFTA_EXPR_NAME, []byte("quota\x00")), attr(unix.NLA_F_NESTED|unix.NFTA_EXPR_DATA, nil)...)
			exprs := append(attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, quota), attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, ce)...)
			el = append(el, attr(unix.NLA_F_NESTED|nftaSetElemExprs, exprs)...)
		} else {
			el = append(el, attr(unix.NLA_F_NESTED|nftaSetElemExpr, ce)...)
		}
		list = append(list, attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, el)...)
	}
	msg := attr(unix.NFTA_SET_ELEM_LIST_TABLE, []byte("t\x00"))
	msg = append(msg, attr(unix.NFTA_SET_ELEM_LIST_SET, []byte("s\x00"))...)
	return append(msg, attr(unix.NLA_F_NESTED|unix.NFTA_SET_ELEM_LIST_ELEMENTS, list)...)
}

func TestParseElements(t *testing.T) {
	for _, several := range []bool{false, true} {
		var got []element
		err := parseElements(setElementsMessage(several, []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}), func(e element) { got = append(got, e) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got[1].key) != "\xc0\x00\x02\x02" || !got[1].hasCounter || got[1].packets != 2 || got[1].bytes != 200 {
			t.Errorf("several=%v: %+v", several, got)
		}
	}
}

// FuzzParseSetMessages feeds arbitrary bytes as set and set element
// messages: sets are written by any tool, so the decoder must fail cleanly.
func FuzzParseSetMessages(f *testing.F) {
	f.Add(setElementsMessage(false, []byte{192, 0, 2, 1}))
	f.Add(setElementsMessage(true, make([]byte, 16)))
	f.Add(attr(unix.NFTA_SET_USERDATA, []byte{7, 3, '=', 'a', 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseElements(b, func(e element) {
			if len(e.key) > len(b) {
				t.Errorf("key longer than the message")
			}
		})
		s, err := parseSet(b)
		if err == nil && len(s.comment) > len(b) {
			t.Errorf("comment longer than the message")
		}
		_, _ = s.addressFamily()
	})
}

func TestDedupe(t *testing.T) {
	as := collector.AddressSet{Elements: []collector.AddressCount{
		{Addr: netip.MustParseAddr("192.0.2.1"), Packets: 1},
		{Addr: netip.MustParseAddr("192.0.2.2"), Packets: 2},
		{Addr: netip.MustParseAddr("192.0.2.1"), Packets: 3},
	}}
	seen := map[netip.Addr]struct{}{}
	if !dedupe(&as, seen) || len(as.Elements) != 2 || as.Elements[0].Packets != 1 || as.Elements[1].Packets != 2 {
		t.Errorf("dedupe: %+v", as.Elements)
	}
	if dedupe(&as, seen) {
		t.Error("no repeats left, but dedupe found some: the map it shares was not left empty")
	}
}

// TestRuleID: a rule's ID is the hash of "where #content", the text the
// state files of version 1 named it by, without that text made.
func TestRuleID(t *testing.T) {
	var l location
	l.of(unix.NFPROTO_INET, []byte("t"), []byte("c"))
	for _, content := range []uint64{0, 1, 0xabc, 1<<64 - 1} {
		if got, want := l.id(content), collector.ID("inet t c #"+strconv.FormatUint(content, 16)); got != want {
			t.Errorf("id(%x) = %x, want %x", content, got, want)
		}
	}
}
