package nftmatch

import (
	"bufio"
	"errors"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/ipacct/ipacct_exporter/family"
	"golang.org/x/sys/unix"
)

var both = family.Addresses

// accepted are matches with their canonical text, families and the text
// of each alternative (of the first family).
var accepted = []struct {
	in, canon string
	fams      []family.Address
	alts      []string // nil: the canonical text, one alternative
}{
	{"tcp dport 22", "tcp dport 22", both, nil},
	{"  tcp\tdport\n22  ", "tcp dport 22", both, nil},
	{"tcp dport == 22", "tcp dport 22", both, nil},
	{"tcp dport eq 0x16", "tcp dport 22", both, nil},
	{"tcp dport ge 1024", "tcp dport >= 1024", both, nil},
	{"tcp dport != 1-1024", "tcp dport != 1-1024", both, nil},
	{"tcp dport 22-22", "tcp dport 22-22", both, nil},
	{"tcp dport { 22, 80, 8000-8080, }", "tcp dport { 22, 80, 8000-8080 }", both,
		[]string{"tcp dport 22", "tcp dport 80", "tcp dport 8000-8080"}},
	{"tcp dport != { 22, 80 }", "tcp dport != { 22, 80 }", both, []string{"tcp dport != 22 tcp dport != 80"}},
	{"meta mark 0x1", "meta mark 0x00000001", both, nil},
	{"mark 1", "meta mark 0x00000001", both, nil},
	{"meta mark 1-5", "meta mark 0x00000001-0x00000005", both, nil},
	{"meta mark & 0xff00 == 0x100", "meta mark & 0x0000ff00 == 0x00000100", both, nil},
	{"meta mark & 0xff { 1, 2 }", "meta mark & 0x000000ff == { 0x00000001, 0x00000002 }", both,
		[]string{"meta mark & 0x000000ff == 0x00000001", "meta mark & 0x000000ff == 0x00000002"}},
	{"meta l4proto 6", "meta l4proto tcp", both, nil},
	{"meta l4proto ipv6-icmp", "meta l4proto icmpv6", both, nil},
	{"meta l4proto 200", "meta l4proto 200", both, nil},
	{"meta length 0x10", "meta length 16", both, nil},
	{"pkttype unicast", "meta pkttype host", both, nil},
	{"meta skuid 0 meta skgid 100", "meta skuid 0 meta skgid 100", both, nil},
	{"iifname eth0", `iifname "eth0"`, both, nil},
	{`meta oifname != "eth*"`, `oifname != "eth*"`, both, nil},
	{`iifname { "lo", "eth*" }`, `iifname { "lo", "eth*" }`, both, []string{`iifname "lo"`, `iifname "eth*"`}},
	{"cpu 3", "meta cpu 3", both, nil},
	{"meta priority 0:0", "meta priority none", both, nil},
	{"meta priority 10:20", "meta priority 10:20", both, nil},
	{"meta priority 1:0-1:ffff", "meta priority 1:0-1:ffff", both, nil},
	{"ct state established,related", "ct state established,related", both, nil},
	{"ct state related|established", "ct state established,related", both, nil},
	{"ct state == established , related", "ct state == established,related", both, nil},
	{"ct state eq established", "ct state == established", both, nil},
	{"ct state 0x80", "ct state 0x80", both, nil},
	{"ct state { established|related, new }", "ct state { established|related, new }", both,
		[]string{"ct state == established,related", "ct state == new"}},
	{"ct state != { new, invalid }", "ct state != { new, invalid }", both, []string{"ct state != new ct state != invalid"}},
	{"ct state & (new|established) == established", "ct state established / established,new", both, nil},
	{"ct status ! assured,confirmed", "ct status ! assured,confirmed", both, nil},
	{"ct mark & 0xff00 != 0x100", "ct mark & 0x0000ff00 != 0x00000100", both, nil},
	{"ct direction 1", "ct direction reply", both, nil},
	{"tcp flags syn", "tcp flags syn", both, nil},
	{"tcp flags & (syn|ack) == syn|ack", "tcp flags syn,ack / syn,ack", both, nil},
	{"tcp flags & syn != 0x0", "tcp flags & syn != 0x0", both, nil},
	{"tcp flags & 0x82 == syn", "tcp flags syn / syn,cwr", both, nil},
	{"ct state & 0x82 == established", "ct state & 0x82 == established", both, nil},
	{"tcp flags & (syn|ack|fin) == syn,ack", "tcp flags syn,ack / fin,syn,ack", both, nil},
	{"tcp flags & (syn|ack|fin) { syn|ack, fin }", "tcp flags & (fin|syn|ack) == { syn|ack, fin }", both,
		[]string{"tcp flags syn,ack / fin,syn,ack", "tcp flags fin / fin,syn,ack"}},
	{"tcp flags syn,ack / syn,ack,fin", "tcp flags syn,ack / fin,syn,ack", both, nil},
	{"tcp flags & (syn | ack) { syn, ack }", "tcp flags & (syn|ack) == { syn, ack }", both,
		[]string{"tcp flags syn / syn,ack", "tcp flags ack / syn,ack"}},
	{"ip saddr 10.0.0.0/8 ip daddr 192.0.2.1/32", "ip saddr 10.0.0.0/8 ip daddr 192.0.2.1", []family.Address{family.IPv4}, nil},
	{"ip saddr 10.0.0.0 / 8", "ip saddr 10.0.0.0/8", []family.Address{family.IPv4}, nil},
	{"ip dscp 46", "ip dscp ef", []family.Address{family.IPv4}, nil},
	{"ip dscp 8-0x18", "ip dscp 0x08-0x18", []family.Address{family.IPv4}, nil},
	{"ip dscp { cs1, af41 }", "ip dscp { cs1, af41 }", []family.Address{family.IPv4}, []string{"ip dscp cs1", "ip dscp af41"}},
	{"ip protocol udp udp dport 53", "ip protocol udp udp dport 53", []family.Address{family.IPv4}, nil},
	{"tcp dport 22 meta l4proto tcp", "tcp dport 22 meta l4proto tcp", both, nil},
	{"meta l4proto tcp ip protocol udp th dport 1", "meta l4proto tcp ip protocol udp th dport 1", []family.Address{family.IPv4}, nil},
	{"meta l4proto != tcp meta l4proto 6-17 tcp dport 1", "meta l4proto != tcp meta l4proto 6-17 tcp dport 1", both, nil},
	{"ip6 saddr ::ffff:1.2.3.4", "ip6 saddr ::ffff:1.2.3.4", []family.Address{family.IPv6}, nil},
	{"ip6 daddr 2001:DB8::1", "ip6 daddr 2001:db8::1", []family.Address{family.IPv6}, nil},
	{"ip6 saddr 2001:db8::1-2001:db8::5", "ip6 saddr 2001:db8::1-2001:db8::5", []family.Address{family.IPv6}, nil},
	{"ip6 dscp ef ip6 hoplimit 1", "ip6 dscp ef ip6 hoplimit 1", []family.Address{family.IPv6}, nil},
	{"icmp type { echo-request, 0 }", "icmp type { echo-request, echo-reply }", []family.Address{family.IPv4},
		[]string{"icmp type echo-request", "icmp type echo-reply"}},
	{"icmp code 3", "icmp code port-unreachable", []family.Address{family.IPv4}, nil},
	{"icmpv6 type 128-129", "icmpv6 type 128-129", []family.Address{family.IPv6}, nil},
	{"th dport 53 th sport 53", "th dport 53 th sport 53", both, nil},
	{"meta l4proto { tcp, udp } th dport 53", "meta l4proto { tcp, udp } th dport 53", both,
		[]string{"meta l4proto tcp th dport 53", "meta l4proto udp th dport 53"}},
	{"tcp dport { 22, 80 } ip saddr { 10.0.0.0/8, 192.168.0.0/16 }", "tcp dport { 22, 80 } ip saddr { 10.0.0.0/8, 192.168.0.0/16 }", []family.Address{family.IPv4},
		[]string{"tcp dport 22 ip saddr 10.0.0.0/8", "tcp dport 22 ip saddr 192.168.0.0/16", "tcp dport 80 ip saddr 10.0.0.0/8", "tcp dport 80 ip saddr 192.168.0.0/16"}},
}

func TestAccepted(t *testing.T) {
	for _, tc := range accepted {
		m, err := Parse(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := m.String(); got != tc.canon {
			t.Errorf("%q: canonical text %q, want %q", tc.in, got, tc.canon)
		}
		if got := m.Families(); !slices.Equal(got, tc.fams) {
			t.Errorf("%q: families %v, want %v", tc.in, got, tc.fams)
		}
		alts, err := m.Alternatives(tc.fams[0])
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		want := tc.alts
		if want == nil {
			want = []string{tc.canon}
		}
		var got []string
		for _, a := range alts {
			got = append(got, a.Text)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: alternatives %q, want %q", tc.in, got, want)
		}
	}
}

// rejected are matches with their exact error.
var rejected = []struct{ in, err string }{
	{"", "column 1: the match is empty"},
	{"  \t", "column 1: the match is empty"},
	{"ct state establishd", `column 10: "establishd" is not a ct state; expected one of new, established, related, invalid, untracked`},
	{"tcp dport", "column 10: tcp dport needs a value"},
	{"tcp", "column 4: tcp needs a field: expected one of dport, flags, sport"},
	{"tcp window 5", `column 1: "tcp window" is not supported by the exporter's match subset; see ` + DocRef},
	{"ip id 5", `column 1: "ip id" is not supported by the exporter's match subset; see ` + DocRef},
	{"meta iif lo", `column 1: "meta iif" is not supported by the exporter's match subset; see ` + DocRef},
	{"ct zone 1", `column 1: "ct zone" is not supported by the exporter's match subset; see ` + DocRef},
	{"tcp foo 1", `column 5: "foo" is not a tcp field of the exporter's match subset; expected one of dport, flags, sport`},
	{"ether saddr 00:11:22:33:44:55", `column 1: "ether" is not supported by the exporter's match subset; see ` + DocRef},
	{"foo bar", `column 1: "foo" is not a selector of the exporter's match subset (meta, ct, ip, ip6, tcp, udp, th, icmp, icmpv6, iifname, oifname); see ` + DocRef},
	{"tcp dport 22 80", `column 14: unexpected "80": expected a selector; several values need a set: { a, b }`},
	{"tcp dport 22,80", "column 13: several values need a set: tcp dport { a, b }"},
	{"tcp dport 22 counter", `column 14: "counter" is a statement (the exporter adds the counter itself); a match only selects packets`},
	{"tcp dport 22 accept", `column 14: "accept" is a verdict; a match only selects packets`},
	{"jump x", `column 1: "jump" is a verdict; a match only selects packets`},
	{`tcp dport 22 log prefix "x"`, `column 14: "log" is a statement; a match only selects packets`},
	{`comment "x"`, `column 1: "comment" is a statement; a match only selects packets`},
	{"meta mark set 1", `column 11: "meta mark set" is a statement; a match only selects packets`},
	{"ct mark set 1", `column 9: "ct mark set" is a statement; a match only selects packets`},
	{"tcp dport 22 # ssh", "column 14: comments (#) are not allowed in a match"},
	{"tcp dport 22; drop", `column 13: ";" ends a rule; a match is one expression, without statements`},
	{"tcp dport $ports", "column 11: variables ($name) are not supported"},
	{"tcp dport @ports", "column 11: raw payload expressions and named sets (@...) are not supported by the exporter's match subset; see " + DocRef},
	{"tcp dport 65536", "column 11: 65536 is out of range for tcp dport: 0-65535"},
	{"tcp dport 010", "column 11: 010 has a leading zero, which nft reads as octal; write it without, or in 0x hex"},
	{"tcp dport 80-22", "column 11: the range 80-22 is reversed"},
	{"tcp dport 0x", `column 11: "0x" is not a number; tcp dport takes decimal or 0x hex`},
	{"tcp dport 0x10000000000000000", "column 11: 0x10000000000000000 is too large"},
	{"tcp dport 99999999999999999999999", "column 11: 99999999999999999999999 is too large"},
	{"tcp dport { 22, 20-30 }", "column 17: 20-30 overlaps 22 in the set; the elements of a set must not overlap, or a packet would be counted twice"},
	{"tcp dport { 22, 22 }", "column 17: 22 overlaps 22 in the set; the elements of a set must not overlap, or a packet would be counted twice"},
	{"tcp dport { }", "column 11: the set is empty"},
	{"tcp dport { 22", "column 11: the set has no closing }"},
	{"tcp dport { 22 80 }", `column 16: unexpected "80" in the set: expected , or }`},
	{"tcp dport { { 22 } }", "column 13: sets do not nest"},
	{"tcp dport < 20-30", "column 13: < takes a single value, not a range or prefix"},
	{"tcp dport < { 1, 2 }", "column 11: a set takes == or !=, not <"},
	{"ip saddr 10.1.2.3/8", "column 10: 10.1.2.3/8 has host bits set; write 10.0.0.0/8"},
	{"ip saddr 2001:db8::1", "column 10: 2001:db8::1 is an IPv6 address; ip saddr takes IPv4 ones"},
	{"ip6 saddr 10.0.0.1", "column 11: 10.0.0.1 is an IPv4 address; ip6 saddr takes IPv6 ones (::ffff:10.0.0.1 for a mapped one)"},
	{"ip saddr 10.0.0.0/33", `column 19: "33" is not a prefix length; expected 0-32`},
	{"ip saddr 10.0.0.0/", "column 19: expected a prefix length 0-32 after /"},
	{"ip saddr 10.0.0.300", `column 10: "10.0.0.300" is not an IP address`},
	{"ip saddr 10.0.0.5-10.0.0.1", "column 10: the range 10.0.0.5-10.0.0.1 is reversed"},
	{"ip saddr fe80::1%lo", `column 17: unexpected "%"`},
	{"ip saddr < 10.0.0.0/8", "column 12: < takes a single value, not a range or prefix"},
	{"ip saddr { 10.0.0.0/8, 10.1.0.0/16 }", "column 24: 10.1.0.0/16 overlaps 10.0.0.0/8 in the set; the elements of a set must not overlap, or a packet would be counted twice"},
	{`iifname ""`, "column 9: the interface name is empty"},
	{`iifname "*"`, `column 9: "*" alone matches every name; leave out the iifname match instead`},
	{`iifname "e*th"`, `column 9: "e*th": * is a wildcard only at the end of an interface name`},
	{`iifname "0123456789abcdef"`, `column 9: "0123456789abcdef" is longer than an interface name (15 bytes)`},
	{`iifname 'eth0'`, `column 9: strings are written in double quotes: "eth0"`},
	{`iifname "eth0`, "column 9: the string has no closing quote"},
	{`iifname "a\"b"`, `column 11: escapes (\) are not supported in a string`},
	{`iifname < "eth0"`, "column 9: iifname takes == or !=, not <"},
	{`iifname { "eth*", "eth0" }`, `column 19: "eth0" overlaps "eth*" in the set; the elements of a set must not overlap, or a packet would be counted twice`},
	{"iifname & 0xff == 1", "column 9: iifname takes no mask (&); masks apply to marks, numbers and bit masks"},
	{"ct state < established", "column 10: ct state takes == or !=, not <"},
	{"ct state 0", "column 10: ct state 0 never matches: no bit is set in 0; write ct state == 0 for none"},
	{"ct state { 0, new }", "column 12: 0 in a set of ct state matches packets without any of its bits; write ct state == 0 on its own"},
	{"ct state & established == new", "column 27: new has bits outside the mask established, so it never matches"},
	{"tcp flags syn / ack", "column 11: syn has bits outside the mask ack, so it never matches"},
	{"tcp flags < syn / syn", "column 17: VALUE / MASK takes == or !="},
	{"tcp flags & syn|ack == syn", "column 16: a mask of several values needs parentheses: & (a|b)"},
	{"ip ttl ! 5", `column 8: "!" alone applies to bit masks (ct state, ct status, tcp flags); write != for "not equal"`},
	{"ip dscp 64", "column 9: 64 is out of range for ip dscp: 0-63"},
	{"ip dscp cs8", `column 9: "cs8" is not a dscp class; expected one of cs0, df, be, lephb, cs1, af11, af12, af13, cs2, af21, af22, af23, cs3, af31, af32, af33, cs4, af41, af42, af43, cs5, va, ef, cs6, cs7, or a number`},
	{"icmp type echo-request ip6 saddr ::1", "column 24: ip6 saddr matches IPv6 only, but icmp type at column 1 matches IPv4 only"},
	{"ip saddr 10.0.0.1 ip6 saddr ::1", "column 19: ip6 saddr matches IPv6 only, but ip saddr at column 1 matches IPv4 only"},
	{"udp dport 53 tcp dport 22", "column 14: conflicting protocols specified: udp vs. tcp (tcp dport needs tcp)"},
	{"meta l4proto udp tcp dport 22", "column 18: conflicting protocols specified: udp vs. tcp (tcp dport needs tcp)"},
	{"ip protocol 17 icmp type 3", "column 16: conflicting protocols specified: udp vs. icmp (icmp type needs icmp)"},
	{"meta l4proto { tcp, udp } tcp dport 22", "column 27: conflicting protocols specified: udp vs. tcp (tcp dport needs tcp)"},
	{"tcp dport 22 meta l4proto udp", "column 1: conflicting protocols specified: udp vs. tcp (tcp dport needs tcp)"},
	{"meta l4proto 200 tcp dport 22", "column 18: conflicting protocols specified: 200 vs. tcp (tcp dport needs tcp)"},
	{"ip6 nexthdr 0 icmpv6 type 1", "column 15: conflicting protocols specified: 0 vs. icmpv6 (icmpv6 type needs icmpv6)"},
	{"meta priority 1", `column 15: "1" is not a meta priority; expected none, root or MAJOR:MINOR in hex, as tc writes a class (1:10)`},
	{"meta priority 10000:1", `column 15: "10000:1" is not a meta priority; expected none, root or MAJOR:MINOR in hex, as tc writes a class (1:10)`},
	{"meta skuid root", `column 12: "root" is not a number; meta skuid takes decimal or 0x hex`},
	{"meta mark = 1", `column 11: "=" is not an operator; write == or leave the operator out`},
	{"meta mark & 0xff 0x100", "column 18: 0x00000100 has bits outside the mask 0x000000ff, so it never matches"},
	{"meta mark & 0xff 1-2", "column 18: a masked meta mark takes single values, not ranges"},
	{"meta mark & 0xff < 2", "column 18: a masked meta mark takes == or !=, not <"},
	{"meta mark & (0xff 1", `column 19: unexpected "1" in the mask: expected | or )`},
	{"meta mark 0x1 / 0xff", `column 15: "/" after a meta mark value: nft reads that as a prefix length; write meta mark & MASK == VALUE`},
	{"ct direction sideways", `column 14: "sideways" is not a ct direction; expected one of original, reply, or a number`},
	{"meta pkttype hots", `column 14: "hots" is not a packet type; expected one of host, unicast, broadcast, multicast, other, or a number`},
	{"ip protocol tcpp", `column 13: "tcpp" is not a protocol name; expected one of icmp, igmp, tcp, udp, dccp, gre, esp, ah, icmpv6, ipv6-icmp, sctp, udplite, or a number`},
	{"ip protocol 256", "column 13: 256 is out of range for ip protocol: 0-255"},
	{"meta", "column 5: meta needs a field: expected one of cpu, iifname, l4proto, length, mark, oifname, pkttype, priority, skgid, skuid"},
	{"icmp type", "column 10: icmp type needs a value"},
	{"tcp dport 1 ]", `column 13: unexpected "]"`},
	{"tcp dport 1 \x01", "column 13: unexpected byte 0x01; a match is printable ASCII"},
	{"{ 22 }", `column 1: unexpected "{": expected a selector such as tcp dport or ct state`},
	{"tcp dport { " + strings.Repeat("1, ", 1001) + "}", "column 3013: the set has more than 1000 elements"},
	{"tcp dport { 1-10, 11-20, 21-30, 31-40, 41-50, 51-60, 61-70, 71-80, 81-90, 91-100, 101-110 } " +
		"udp length { 1-10, 11-20, 21-30, 31-40, 41-50, 51-60, 61-70, 71-80, 81-90, 91-100, 101-110 } " +
		"meta mark { 1, 2, 3, 4, 5, 6, 7, 8, 9 }",
		"column 186: the match expands to more than 1000 rules: each set after == multiplies the rules"},
	{"tcp dport != { " + seq(40) + " }",
		"column 1: a rule of the match needs 82 expressions; at most 64 fit (each value of a != set adds two)"},
}

// seq is "1, 2, ..., n".
func seq(n int) string {
	var s []string
	for i := 1; i <= n; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ", ")
}

func TestRejected(t *testing.T) {
	for _, tc := range rejected {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("%q: accepted, want %s", tc.in, tc.err)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: %T, want *Error", tc.in, err)
		}
		if err.Error() != tc.err {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, err, tc.err)
		}
	}
}

// TestRecordedBytecode compares our expressions with what nft 1.0.6 made
// of the same text, as recorded in testdata (see its header): the same
// check as TestKernelEquivalence, without root.
func TestRecordedBytecode(t *testing.T) {
	f, err := os.Open("testdata/nft-1.0.6-bytecode.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type rec struct {
		fam, text string
		lines     []string
	}
	var recs []*rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "> "):
			fam, text, _ := strings.Cut(line[2:], " ")
			recs = append(recs, &rec{fam: fam, text: text})
		case strings.HasPrefix(line, "["):
			recs[len(recs)-1].lines = append(recs[len(recs)-1].lines, line)
		}
	}
	if len(recs) < 60 {
		t.Fatalf("only %d recorded rules", len(recs))
	}
	for _, r := range recs {
		m, err := Parse(r.text)
		if err != nil {
			t.Errorf("%s: %v", r.text, err)
			continue
		}
		alts, err := m.Alternatives(family.Address(r.fam))
		if err != nil || len(alts) != 1 {
			t.Errorf("%s: %d alternatives, %v", r.text, len(alts), err)
			continue
		}
		var got []string
		for _, e := range alts[0].Exprs {
			got = append(got, exprText(e))
		}
		if !slices.Equal(got, r.lines) {
			t.Errorf("%s %s:\nnft 1.0.6:\n  %s\nours:\n  %s", r.fam, r.text, strings.Join(r.lines, "\n  "), strings.Join(got, "\n  "))
		}
	}
}

// TestRoundTrip: the canonical text and every alternative's text parse
// back to the same rules.
func TestRoundTrip(t *testing.T) {
	var texts []string
	for _, tc := range accepted {
		texts = append(texts, tc.in)
	}
	for _, tc := range equivalenceCases {
		texts = append(texts, tc.text)
	}
	for _, text := range texts {
		checkRoundTrip(t, text)
	}
}

// checkRoundTrip fails the test unless text parses, compiles for each of
// its families, and its canonical and alternative texts parse back to the
// same expressions.
func checkRoundTrip(t *testing.T, text string) {
	t.Helper()
	m, err := Parse(text)
	if err != nil {
		t.Errorf("%q: %v", text, err)
		return
	}
	canon := m.String()
	m2, err := Parse(canon)
	if err != nil {
		t.Errorf("%q: canonical text %q does not parse: %v", text, canon, err)
		return
	}
	if m2.String() != canon {
		t.Errorf("%q: canonical text %q prints back as %q", text, canon, m2.String())
	}
	if !slices.Equal(m.Families(), m2.Families()) {
		t.Errorf("%q: families %v, of the canonical text %v", text, m.Families(), m2.Families())
	}
	for _, fam := range m.Families() {
		alts, err := m.Alternatives(fam)
		if err != nil {
			t.Errorf("%q: %s: %v", text, fam, err)
			continue
		}
		if len(alts) == 0 || len(alts) > MaxAlternatives {
			t.Errorf("%q: %s: %d alternatives", text, fam, len(alts))
		}
		alts2, err := m2.Alternatives(fam)
		if err != nil || !reflect.DeepEqual(alts, alts2) {
			t.Errorf("%q: %s: the canonical text compiles differently (%v)", text, fam, err)
		}
		for _, a := range alts {
			if len(a.Exprs) > MaxExprs {
				t.Errorf("%q: %d expressions", text, len(a.Exprs))
			}
			ma, err := Parse(a.Text)
			if err != nil {
				t.Errorf("%q: alternative %q does not parse: %v", text, a.Text, err)
				continue
			}
			aa, err := ma.Alternatives(fam)
			if err != nil || len(aa) != 1 || !reflect.DeepEqual(aa[0].Exprs, a.Exprs) || aa[0].Text != a.Text {
				t.Errorf("%q: alternative %q compiles differently on its own (%v)", text, a.Text, err)
			}
		}
	}
}

func TestFamilies(t *testing.T) {
	m, err := Parse("ip saddr 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rules(family.IPv6); err == nil || err.Error() != "column 1: ip saddr matches IPv4 only, so the match has no IPv6 rule" {
		t.Errorf("Rules(ipv6) of an IPv4 match: %v", err)
	}
	if _, err := m.Rules("ip"); err == nil || err.Error() != `"ip" is not a family; use "ipv4" or "ipv6"` {
		t.Errorf(`Rules("ip"): %v`, err)
	}
	rules, err := m.Rules(family.IPv4)
	if err != nil || len(rules) != 1 || len(rules[0]) != 2 {
		t.Errorf("Rules(ipv4) = %v, %v", rules, err)
	}
}

func TestAlternativesAfter(t *testing.T) {
	m, err := Parse("tcp flags syn tcp dport 22")
	if err != nil {
		t.Fatal(err)
	}
	alts, err := m.AlternativesAfter(family.IPv4, unix.IPPROTO_TCP)
	if err != nil {
		t.Fatal(err)
	}
	if got := exprsText(alts[0].Exprs); strings.Contains(got, "l4proto") {
		t.Errorf("after meta l4proto tcp, the match checks it again:\n%s", got)
	}
	alts, err = m.Alternatives(family.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	if got := exprsText(alts[0].Exprs); strings.Count(got, "l4proto") != 1 {
		t.Errorf("the match does not check meta l4proto once:\n%s", got)
	}
	if _, err := m.AlternativesAfter(family.IPv4, unix.IPPROTO_UDP); err == nil ||
		err.Error() != "column 1: conflicting protocols specified: udp vs. tcp (tcp flags needs tcp)" {
		t.Errorf("after meta l4proto udp: %v", err)
	}
}

// TestFreshExprs: callers own what they get; a second call is not
// affected by changes to the first's expressions.
func TestFreshExprs(t *testing.T) {
	m, err := Parse("tcp dport 22")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Rules(family.IPv4)
	a[0][3].(*expr.Cmp).Data[1] = 0
	b, _ := m.Rules(family.IPv4)
	if d := b[0][3].(*expr.Cmp).Data; d[1] != 22 {
		t.Errorf("second call sees the first call's change: %v", d)
	}
}

func TestMaxAlternatives(t *testing.T) {
	// 10 × 10 × 10 = 1000 rules: the limit, accepted.
	ten := "{ " + seq(10) + " }"
	m, err := Parse("tcp dport " + ten + " ip ttl " + ten + " meta mark " + ten)
	if err != nil {
		t.Fatal(err)
	}
	if alts, err := m.Alternatives(family.IPv4); err != nil || len(alts) != MaxAlternatives {
		t.Errorf("%d alternatives, %v", len(alts), err)
	}
}
