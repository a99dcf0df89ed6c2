// Package nftmatch compiles the match expressions of rules.yaml (the
// "match:" escape hatch) into google/nftables expressions, for the
// exporter's own table, inet ipacct. The exporter talks netlink and never
// runs nft, and google/nftables cannot read nft syntax: so this package
// reads a documented subset of it, and compiles it to the bytecode nft
// itself would make (nft 1.0.6, checked rule by rule against the kernel in
// kernel_test.go).
//
//	m, err := nftmatch.Parse(`ct state established,related tcp dport { 22, 80 }`)
//	// err is an *Error: "column 10: ..."
//	m.Families()                // [ipv4 ipv6]
//	m.Alternatives(family.IPv4) // two rules: ... tcp dport 22, ... tcp dport 80
//	m.String()                  // canonical nft text
//
// # Shape
//
// A match is a sequence of relations separated by white space (blanks,
// tabs, line breaks); a packet matches when every relation holds. A
// relation is
//
//	SELECTOR [& MASK] [OP] VALUE
//
// OP is one of == != < > <= >= (or nft's words eq ne lt gt le ge). No
// operator means equality, except for bit masks (below). VALUE is
//
//   - a single value: 22, 0x16, echo-request, 192.0.2.1, "eth0";
//   - a range, written without blanks: 1024-65535, 192.0.2.1-192.0.2.9,
//     after no operator, == or !=;
//   - an address prefix: 10.0.0.0/8, 2001:db8::/32, after no operator, ==
//     or !=; host bits must be zero;
//   - an anonymous set of values, ranges and prefixes: { 22, 80, 8000-8080 }.
//     After no operator or ==, a set makes one rule per element (the rule
//     "alternatives"; several sets make their cross product), so that each
//     packet matches at most one of them and their counters add up to the
//     match's count. The elements of a set must not overlap. After !=, a set
//     is a conjunction in one rule: tcp dport != { 22, 80 } is
//     tcp dport != 22 tcp dport != 80.
//
// Numbers are decimal or 0x hex. A decimal number with a leading zero is an
// error, because nft reads it as octal. Strings are in double quotes, with
// no escapes.
//
// # Selectors
//
//	meta mark, mark             number, printed 0x%08x
//	meta l4proto                protocol: number or tcp, udp, icmp, icmpv6
//	                            (ipv6-icmp), igmp, dccp, gre, esp, ah, sctp,
//	                            udplite
//	meta length                 number
//	meta pkttype, pkttype       host (unicast), broadcast, multicast, other
//	meta skuid, meta skgid,     number (no user or group names)
//	skuid, skgid
//	iifname, oifname            interface name, "eth*" for a prefix; == and
//	(meta iifname, ...)         != only; at most 15 bytes; * only at the end
//	meta cpu, cpu               number
//	meta priority               none, root or MAJOR:MINOR in hex (1:10)
//	ct state                    bit mask: new, established, related,
//	                            invalid, untracked
//	ct status                   bit mask: expected, seen-reply, assured,
//	                            confirmed, snat, dnat, dying
//	ct mark                     number, printed 0x%08x
//	ct direction                original, reply
//	ip protocol                 protocol, as meta l4proto
//	ip saddr, ip daddr          IPv4 address, prefix or range
//	ip dscp                     cs0-cs7, df, be, lephb, af11-af43, va, ef,
//	                            or a number 0-63
//	ip length, ip ttl           number
//	ip6 nexthdr                 protocol, as meta l4proto
//	ip6 saddr, ip6 daddr        IPv6 address, prefix or range
//	ip6 dscp                    as ip dscp
//	ip6 hoplimit, ip6 length    number (ip6 length is the payload length)
//	tcp sport, tcp dport        number
//	tcp flags                   bit mask: fin, syn, rst, psh, ack, urg,
//	                            ecn, cwr
//	udp sport, udp dport,       number
//	udp length
//	th sport, th dport          number: the ports of any transport header,
//	                            with no protocol check (as in nft)
//	icmp type, icmp code        nft's names (echo-request,
//	                            port-unreachable, ...) or a number
//	icmpv6 type, icmpv6 code    likewise
//
// ip selectors and icmp need IPv4; ip6 selectors and icmpv6 need IPv6;
// the others apply to both families. Families says which families a match
// applies to; a match that needs both IPv4 and IPv6 is an error. Anything
// else nft knows (ether, vlan, ip id, ct zone, meta iif, raw payload
// @th,..., named sets, maps, variables) is an error that says it is not
// supported by the subset.
//
// # Bit masks
//
// ct state, ct status and tcp flags take names joined by , or |. As in
// nft:
//
//	ct state established,related        any of the bits set (& mask != 0)
//	ct state == established,related     exactly these bits
//	ct state != established,related     not exactly these bits
//	ct state ! new,related              none of the bits set
//	tcp flags syn / syn,ack             the bits of syn,ack are syn;
//	tcp flags & (syn|ack) == syn        the same
//	ct state { established, related }   one rule each, exact (ct state == ...)
//
// meta mark, ct mark and other numbers take a mask too:
// meta mark & 0xff00 == 0x100, with == or != and single values or a set.
//
// # What the exporter adds, and what nft would
//
// The rules go into a table of family inet, in chains whose rules already
// check meta nfproto (ipv4 or ipv6) first, so the expressions returned do
// not check the family. Where nft adds a dependency in an inet table, so
// does this package: tcp, udp, icmp and icmpv6 selectors get a meta l4proto
// check first, unless an earlier meta l4proto, ip protocol or ip6 nexthdr
// equality already fixes the protocol. th needs none. Two selectors of
// different transport protocols (udp dport 53 tcp dport 22), or one and
// an equality on meta l4proto, ip protocol or ip6 nexthdr with another
// protocol anywhere in the match, are an error ("conflicting protocols"):
// such a rule never matches, and nft handles the cases unevenly (it
// accepts tcp dport 22 meta l4proto udp, and fails an assertion on
// meta l4proto ah tcp dport 22). Byte order follows nft:
// meta and ct numbers are in host order and get a byteorder expression
// before <, >, <=, >= and ranges; payload fields are compared in network
// order. A range is two comparisons (>=, <=) after no operator or ==, and a
// range expression after !=. A prefix on a byte boundary loads only the
// bytes it fixes; another prefix loads the field and masks it. Equalities
// on adjacent payload fields are merged into one load and comparison as
// nft merges them (tcp sport 1 tcp dport 2 is one 4-byte comparison).
//
// Where the bytecode differs from nft 1.0.6:
//
//   - nft 1.0.6 also merges two adjacent != payload matches
//     (tcp sport != 1 tcp dport != 2 becomes one 4-byte !=, which matches
//     unless both are equal: a bug, reported on netfilter-devel in 2024).
//     This package does not merge != and compiles what the text says; the
//     kernel test checks both that nft 1.0.6 does merge and that our rule
//     counts what the text says.
//   - A set compiles to several rules (or, after !=, several comparisons)
//     instead of nft's anonymous set and lookup; the packets counted are the
//     same. The text of each alternative compiles, in nft, to exactly the
//     alternative's bytecode.
//
// # Statements
//
// A match only selects packets. counter, verdicts (accept, drop, jump, ...),
// log, limit, comment, "meta mark set" and other statements are errors, as
// are comments (#) and ;.
//
// # Text
//
// String prints the match as nft list prints it back, with these
// differences: protocol names are the subset's (icmpv6, not the
// /etc/protocols name ipv6-icmp); a set of bit mask values prints its
// elements with | (nft: " | "); == on several bits prints as a comma
// list with ==, where nft 1.0.6 prints "established | related" without ==
// (and then reads that back as "any of"); a masked bit mask prints as nft's
// VALUE / MASK only when both have names (nft cannot read 0x0 / syn), else
// as & MASK == VALUE. Parse reads String's output back to the same match,
// and nft compiles it to the same rule as the original. Each Alternative's
// Text, after "meta nfproto ipv4 " or "meta nfproto ipv6 ", is a rule
// nft -f accepts and compiles to that alternative's expressions.
//
// # Limits
//
// A match expands to at most MaxAlternatives rules, each of at most
// MaxExprs expressions (the kernel takes 128 per rule, and the caller adds
// its own around the match).
package nftmatch
