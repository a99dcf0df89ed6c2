package nftmatch

import (
	"github.com/google/nftables/expr"
	"github.com/ipacct/ipacct_exporter/family"
	"golang.org/x/sys/unix"
)

// kind is how a selector's values are written, printed and compared.
type kind int

const (
	kindInt      kind = iota // a number: decimal or 0x hex
	kindSym                  // a number, or one of the selector's names
	kindFlags                // a bit mask: names joined by , or |
	kindDSCP                 // a 6-bit code point, by name or number
	kindAddr4                // an IPv4 address, prefix or range
	kindAddr6                // an IPv6 address, prefix or range
	kindIfname               // an interface name, "eth*" for a prefix
	kindPriority             // a tc class: MAJOR:MINOR in hex, none or root
)

// source is where the kernel loads a selector's value from.
type source int

const (
	srcMeta source = iota
	srcCt
	srcPayload
)

// symbol is a name nft knows for a value.
type symbol struct {
	name string
	val  uint64
}

// selector is one thing a match can look at: where the kernel finds it,
// how wide it is, in which byte order, and what it needs before it.
type selector struct {
	name string // canonical, as nft prints it: "tcp dport", "iifname"
	kind kind
	size int  // bytes in the register
	host bool // host byte order (meta and ct integers); else network order

	src     source
	meta    expr.MetaKey
	ct      expr.CtKey
	base    expr.PayloadBase
	offset  uint32
	bitmask []byte // for a field narrower than its bytes (dscp): which bits
	shift   uint   // where the field's lowest bit is in those bytes

	family family.Address // "" (both), IPv4 or IPv6
	dep    byte           // the transport protocol it needs first (meta l4proto), or 0
	// protoKey marks the selectors that say which transport protocol
	// follows (meta l4proto, ip protocol, ip6 nexthdr): an equality on one
	// stands in for the dependency of a later tcp, udp or icmp selector.
	protoKey bool
	// protoFlag is nft's EXPR_F_PROTOCOL: the field names the next header.
	// It decides where a merged payload match goes (see mergePayloads).
	protoFlag bool

	max   uint64 // largest value (of the field, before shifting)
	hex8  bool   // printed as 0x%08x, as nft prints marks
	names []symbol
}

// Protocol numbers by the names the subset accepts for meta l4proto, ip
// protocol and ip6 nexthdr. nft reads names from /etc/protocols, which
// differs between systems; these are the names every system spells alike,
// plus icmpv6, which nft knows as a keyword.
var protocols = []symbol{
	{"icmp", unix.IPPROTO_ICMP},
	{"igmp", unix.IPPROTO_IGMP},
	{"tcp", unix.IPPROTO_TCP},
	{"udp", unix.IPPROTO_UDP},
	{"dccp", unix.IPPROTO_DCCP},
	{"gre", unix.IPPROTO_GRE},
	{"esp", unix.IPPROTO_ESP},
	{"ah", unix.IPPROTO_AH},
	{"icmpv6", unix.IPPROTO_ICMPV6},
	{"ipv6-icmp", unix.IPPROTO_ICMPV6}, // /etc/protocols' name; printed as icmpv6
	{"sctp", unix.IPPROTO_SCTP},
	{"udplite", unix.IPPROTO_UDPLITE},
}

var pktTypes = []symbol{{"host", 0}, {"unicast", 0}, {"broadcast", 1}, {"multicast", 2}, {"other", 3}}

var ctDirections = []symbol{{"original", 0}, {"reply", 1}}

// In the order nft's documentation lists them; printed by bit value.
var ctStates = []symbol{
	{"new", 8}, {"established", 2}, {"related", 4}, {"invalid", 1}, {"untracked", 64},
}

var ctStatuses = []symbol{
	{"expected", 1}, {"seen-reply", 2}, {"assured", 4}, {"confirmed", 8},
	{"snat", 16}, {"dnat", 32}, {"dying", 512},
}

var tcpFlags = []symbol{
	{"fin", 0x01}, {"syn", 0x02}, {"rst", 0x04}, {"psh", 0x08},
	{"ack", 0x10}, {"urg", 0x20}, {"ecn", 0x40}, {"cwr", 0x80},
}

// The first name of a value is the one printed.
var dscpNames = []symbol{
	{"cs0", 0x00}, {"df", 0x00}, {"be", 0x00}, {"lephb", 0x01},
	{"cs1", 0x08}, {"af11", 0x0a}, {"af12", 0x0c}, {"af13", 0x0e},
	{"cs2", 0x10}, {"af21", 0x12}, {"af22", 0x14}, {"af23", 0x16},
	{"cs3", 0x18}, {"af31", 0x1a}, {"af32", 0x1c}, {"af33", 0x1e},
	{"cs4", 0x20}, {"af41", 0x22}, {"af42", 0x24}, {"af43", 0x26},
	{"cs5", 0x28}, {"va", 0x2c}, {"ef", 0x2e}, {"cs6", 0x30}, {"cs7", 0x38},
}

var icmpTypes = []symbol{
	{"echo-reply", 0}, {"destination-unreachable", 3}, {"source-quench", 4},
	{"redirect", 5}, {"echo-request", 8}, {"router-advertisement", 9},
	{"router-solicitation", 10}, {"time-exceeded", 11}, {"parameter-problem", 12},
	{"timestamp-request", 13}, {"timestamp-reply", 14}, {"info-request", 15},
	{"info-reply", 16}, {"address-mask-request", 17}, {"address-mask-reply", 18},
}

var icmpCodes = []symbol{
	{"net-unreachable", 0}, {"host-unreachable", 1}, {"prot-unreachable", 2},
	{"port-unreachable", 3}, {"frag-needed", 4}, {"net-prohibited", 9},
	{"host-prohibited", 10}, {"admin-prohibited", 13},
}

var icmpv6Types = []symbol{
	{"destination-unreachable", 1}, {"packet-too-big", 2}, {"time-exceeded", 3},
	{"parameter-problem", 4}, {"echo-request", 128}, {"echo-reply", 129},
	{"mld-listener-query", 130}, {"mld-listener-report", 131},
	{"mld-listener-done", 132}, {"mld-listener-reduction", 132},
	{"nd-router-solicit", 133}, {"nd-router-advert", 134},
	{"nd-neighbor-solicit", 135}, {"nd-neighbor-advert", 136},
	{"nd-redirect", 137}, {"router-renumbering", 138},
	{"ind-neighbor-solicit", 141}, {"ind-neighbor-advert", 142},
	{"mld2-listener-report", 143},
}

var icmpv6Codes = []symbol{
	{"no-route", 0}, {"admin-prohibited", 1}, {"addr-unreachable", 3},
	{"port-unreachable", 4}, {"policy-fail", 5}, {"reject-route", 6},
}

func metaSel(name string, key expr.MetaKey, k kind, size int, names []symbol) *selector {
	return &selector{name: name, kind: k, size: size, host: true, src: srcMeta, meta: key, max: maxOf(size), names: names}
}

func ctSel(name string, key expr.CtKey, k kind, size int, names []symbol) *selector {
	return &selector{name: name, kind: k, size: size, host: true, src: srcCt, ct: key, max: maxOf(size), names: names}
}

func payloadSel(name string, base expr.PayloadBase, off uint32, k kind, size int, names []symbol) *selector {
	return &selector{name: name, kind: k, size: size, src: srcPayload, base: base, offset: off, max: maxOf(size), names: names}
}

func maxOf(size int) uint64 {
	if size >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*size) - 1
}

const (
	nh = expr.PayloadBaseNetworkHeader
	th = expr.PayloadBaseTransportHeader
)

// selectors are the subset, by head word and field.
var selectors = map[string]map[string]*selector{
	"meta": {
		"mark":     with(metaSel("meta mark", expr.MetaKeyMARK, kindInt, 4, nil), func(s *selector) { s.hex8 = true }),
		"l4proto":  with(metaSel("meta l4proto", expr.MetaKeyL4PROTO, kindSym, 1, protocols), func(s *selector) { s.protoKey = true }),
		"length":   metaSel("meta length", expr.MetaKeyLEN, kindInt, 4, nil),
		"pkttype":  metaSel("meta pkttype", expr.MetaKeyPKTTYPE, kindSym, 1, pktTypes),
		"skuid":    metaSel("meta skuid", expr.MetaKeySKUID, kindInt, 4, nil),
		"skgid":    metaSel("meta skgid", expr.MetaKeySKGID, kindInt, 4, nil),
		"iifname":  metaSel("iifname", expr.MetaKeyIIFNAME, kindIfname, unix.IFNAMSIZ, nil),
		"oifname":  metaSel("oifname", expr.MetaKeyOIFNAME, kindIfname, unix.IFNAMSIZ, nil),
		"cpu":      metaSel("meta cpu", expr.MetaKeyCPU, kindInt, 4, nil),
		"priority": metaSel("meta priority", expr.MetaKeyPRIORITY, kindPriority, 4, []symbol{{"none", 0}, {"root", 0xffffffff}}),
	},
	"ct": {
		"state":     ctSel("ct state", expr.CtKeySTATE, kindFlags, 4, ctStates),
		"status":    ctSel("ct status", expr.CtKeySTATUS, kindFlags, 4, ctStatuses),
		"mark":      with(ctSel("ct mark", expr.CtKeyMARK, kindInt, 4, nil), func(s *selector) { s.hex8 = true }),
		"direction": ctSel("ct direction", expr.CtKeyDIRECTION, kindSym, 1, ctDirections),
	},
	"ip": {
		"protocol": with(payloadSel("ip protocol", nh, 9, kindSym, 1, protocols), func(s *selector) { s.protoKey, s.protoFlag = true, true }),
		"saddr":    payloadSel("ip saddr", nh, 12, kindAddr4, 4, nil),
		"daddr":    payloadSel("ip daddr", nh, 16, kindAddr4, 4, nil),
		"dscp": with(payloadSel("ip dscp", nh, 1, kindDSCP, 1, dscpNames), func(s *selector) {
			s.bitmask, s.shift, s.max = []byte{0xfc}, 2, 63
		}),
		"length": payloadSel("ip length", nh, 2, kindInt, 2, nil),
		"ttl":    payloadSel("ip ttl", nh, 8, kindInt, 1, nil),
	},
	"ip6": {
		"nexthdr": with(payloadSel("ip6 nexthdr", nh, 6, kindSym, 1, protocols), func(s *selector) { s.protoKey, s.protoFlag = true, true }),
		"saddr":   payloadSel("ip6 saddr", nh, 8, kindAddr6, 16, nil),
		"daddr":   payloadSel("ip6 daddr", nh, 24, kindAddr6, 16, nil),
		// The traffic class straddles the first two bytes: version (4
		// bits), dscp (6), ecn (2), then the flow label.
		"dscp": with(payloadSel("ip6 dscp", nh, 0, kindDSCP, 2, dscpNames), func(s *selector) {
			s.bitmask, s.shift, s.max = []byte{0x0f, 0xc0}, 6, 63
		}),
		"hoplimit": payloadSel("ip6 hoplimit", nh, 7, kindInt, 1, nil),
		"length":   payloadSel("ip6 length", nh, 4, kindInt, 2, nil),
	},
	"tcp": {
		"sport": payloadSel("tcp sport", th, 0, kindInt, 2, nil),
		"dport": payloadSel("tcp dport", th, 2, kindInt, 2, nil),
		"flags": payloadSel("tcp flags", th, 13, kindFlags, 1, tcpFlags),
	},
	"udp": {
		"sport":  payloadSel("udp sport", th, 0, kindInt, 2, nil),
		"dport":  payloadSel("udp dport", th, 2, kindInt, 2, nil),
		"length": payloadSel("udp length", th, 4, kindInt, 2, nil),
	},
	"th": {
		"sport": payloadSel("th sport", th, 0, kindInt, 2, nil),
		"dport": payloadSel("th dport", th, 2, kindInt, 2, nil),
	},
	"icmp": {
		"type": with(payloadSel("icmp type", th, 0, kindSym, 1, icmpTypes), func(s *selector) { s.protoFlag = true }),
		"code": payloadSel("icmp code", th, 1, kindSym, 1, icmpCodes),
	},
	"icmpv6": {
		"type": with(payloadSel("icmpv6 type", th, 0, kindSym, 1, icmpv6Types), func(s *selector) { s.protoFlag = true }),
		"code": payloadSel("icmpv6 code", th, 1, kindSym, 1, icmpv6Codes),
	},
}

// Words that are nft selectors or fields, but not in the subset: they get
// "not supported" rather than "not a selector".
var unsupportedFields = map[string][]string{
	"meta": {"iif", "oif", "iiftype", "oiftype", "iifgroup", "oifgroup", "iifkind", "oifkind", "nfproto", "protocol",
		"nftrace", "rtclassid", "secmark", "secpath", "ibrname", "obrname", "ibriport", "obriport",
		"ibrvproto", "ibrpvid", "cgroup", "random", "ipsec", "time", "day", "hour", "sdif", "sdifname", "broute"},
	"ct": {"zone", "helper", "expiration", "l3proto", "protocol", "saddr", "daddr", "proto-src", "proto-dst",
		"bytes", "packets", "avgpkt", "label", "event", "id", "count", "original", "reply", "timeout", "expectation"},
	"ip":     {"version", "hdrlength", "ecn", "id", "frag-off", "checksum", "option"},
	"ip6":    {"version", "ecn", "flowlabel"},
	"tcp":    {"sequence", "ackseq", "doff", "reserved", "window", "checksum", "urgptr", "option"},
	"udp":    {"checksum"},
	"th":     {},
	"icmp":   {"checksum", "id", "sequence", "gateway", "mtu"},
	"icmpv6": {"checksum", "id", "sequence", "mtu", "max-delay", "taddr", "daddr", "parameter-problem", "packet-too-big"},
}

// Head words of nft selectors outside the subset.
var unsupportedHeads = []string{
	"ether", "vlan", "arp", "sctp", "dccp", "esp", "ah", "comp", "udplite", "rt", "rt0", "rt2", "srh", "fib",
	"socket", "osf", "ipsec", "numgen", "jhash", "symhash", "exthdr", "hbh", "frag", "dst", "mh", "tunnel",
	"vxlan", "geneve", "gre", "gretap", "igmp", "cgroup", "iif", "oif", "iiftype", "oiftype", "iifgroup",
	"oifgroup", "nftrace", "rtclassid", "ibrname", "obrname", "ibriport", "obriport", "ipsec", "time", "day",
	"hour", "dccp", "auth", "icmpx", "xfrm", "tcpopt", "option", "@ll", "@nh", "@th", "@ih",
}

// Meta keys nft accepts without "meta" in front, among those of the subset.
var unqualifiedMeta = []string{"mark", "iifname", "oifname", "skuid", "skgid", "pkttype", "cpu"}

// Words that begin a statement: a match must not contain one.
var statements = map[string]string{
	"counter": "a statement (the exporter adds the counter itself)",
	"accept":  "a verdict", "drop": "a verdict", "reject": "a verdict", "jump": "a verdict",
	"goto": "a verdict", "return": "a verdict", "continue": "a verdict", "queue": "a verdict",
	"log": "a statement", "limit": "a statement", "quota": "a statement", "comment": "a statement",
	"meter": "a statement", "notrack": "a statement", "dup": "a statement", "fwd": "a statement",
	"snat": "a statement", "dnat": "a statement", "masquerade": "a statement", "redirect": "a statement",
	"tproxy": "a statement", "synproxy": "a statement", "set": "a statement", "add": "a statement",
	"update": "a statement", "delete": "a statement", "flow": "a statement", "reset": "a statement",
	"last": "a statement", "xt": "a statement", "nat": "a statement",
}

func init() {
	// What each header's selectors need: the family, and for a transport
	// header, the protocol nft checks first.
	for head, fields := range selectors {
		for _, s := range fields {
			switch head {
			case "ip":
				s.family = family.IPv4
			case "ip6":
				s.family = family.IPv6
			case "tcp":
				s.dep = unix.IPPROTO_TCP
			case "udp":
				s.dep = unix.IPPROTO_UDP
			case "icmp":
				s.family, s.dep = family.IPv4, unix.IPPROTO_ICMP
			case "icmpv6":
				s.family, s.dep = family.IPv6, unix.IPPROTO_ICMPV6
			}
		}
	}
}

func with(s *selector, f func(*selector)) *selector {
	f(s)
	return s
}
