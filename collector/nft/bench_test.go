package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
)

// The benchmarks of this file decode what the kernel sends for the bench
// suite's cases (bench/load.go), without a kernel: 20,000 tagged rules,
// half native nft and half iptables-nft, and a set of 100,000 addresses
// with counters. The messages are laid out as the kernel lays them out,
// with the expressions before the counter that real rules have. Run with
//
//	go test -run='^$' -bench=. -benchmem ./collector/nft/

// benchExpr is one expression of a rule: NFTA_LIST_ELEM{NAME, DATA}.
func benchExpr(name string, data []byte) []byte {
	e := attr(unix.NFTA_EXPR_NAME, []byte(name+"\x00"))
	e = append(e, attr(unix.NLA_F_NESTED|unix.NFTA_EXPR_DATA, data)...)
	return attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, e)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// payloadCmp is "ip saddr/daddr == a": a payload load and a compare.
func payloadCmp(offset uint32, a [4]byte) []byte {
	p := attr(unix.NFTA_PAYLOAD_DREG, u32(1))
	p = append(p, attr(unix.NFTA_PAYLOAD_BASE, u32(unix.NFT_PAYLOAD_NETWORK_HEADER))...)
	p = append(p, attr(unix.NFTA_PAYLOAD_OFFSET, u32(offset))...)
	p = append(p, attr(unix.NFTA_PAYLOAD_LEN, u32(4))...)
	c := attr(unix.NFTA_CMP_SREG, u32(1))
	c = append(c, attr(unix.NFTA_CMP_OP, u32(unix.NFT_CMP_EQ))...)
	c = append(c, attr(unix.NLA_F_NESTED|unix.NFTA_CMP_DATA, attr(unix.NFTA_DATA_VALUE, a[:]))...)
	return append(benchExpr("payload", p), benchExpr("cmp", c)...)
}

func counterExpr(packets, bytes uint64) []byte {
	c := attr(unix.NFTA_COUNTER_BYTES, be(bytes))
	c = append(c, attr(unix.NFTA_COUNTER_PACKETS, be(packets))...)
	return benchExpr("counter", c)
}

// benchRule is one rule message's attributes, as the kernel dumps it.
func benchRule(table, chain string, handle uint64, exprs, udata []byte) []byte {
	b := attr(unix.NFTA_RULE_TABLE, []byte(table+"\x00"))
	b = append(b, attr(unix.NFTA_RULE_CHAIN, []byte(chain+"\x00"))...)
	b = append(b, attr(unix.NFTA_RULE_HANDLE, be(handle))...)
	b = append(b, attr(unix.NLA_F_NESTED|unix.NFTA_RULE_EXPRESSIONS, exprs)...)
	if udata != nil {
		b = append(b, attr(unix.NFTA_RULE_USERDATA, udata)...)
	}
	return b
}

// benchMessage is a dump message's payload: its family and attributes.
type benchMessage struct {
	family uint8
	attrs  []byte
}

// benchRuleDump is the rule dump of bench.LoadRules(n): n/2 native rules
// in inet bench c (meta nfproto, ip saddr, counter, comment in user data),
// then the others in ip filter BENCH as iptables-nft writes them (ip
// daddr, an xt comment match, counter).
func benchRuleDump(n int) []benchMessage {
	const tags = 100
	msgs := make([]benchMessage, 0, n)
	nfproto := append(benchExpr("meta", append(attr(unix.NFTA_META_KEY, u32(unix.NFT_META_NFPROTO)), attr(unix.NFTA_META_DREG, u32(1))...)),
		benchExpr("cmp", append(append(attr(unix.NFTA_CMP_SREG, u32(1)), attr(unix.NFTA_CMP_OP, u32(unix.NFT_CMP_EQ))...),
			attr(unix.NLA_F_NESTED|unix.NFTA_CMP_DATA, attr(unix.NFTA_DATA_VALUE, []byte{unix.NFPROTO_IPV4}))...))...)
	for i := 0; i < n/2; i++ {
		a := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		exprs := append(append(append([]byte{}, nfproto...), payloadCmp(12, a)...), counterExpr(uint64(i+1), uint64(100*(i+1)))...)
		udata := userdata.AppendString(nil, userdata.TypeComment, fmt.Sprintf("=t%d_in= native rule %d", i%tags, i))
		msgs = append(msgs, benchMessage{unix.NFPROTO_INET, benchRule("bench", "c", uint64(i+4), exprs, udata)})
	}
	for i := 0; i < n-n/2; i++ {
		a := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		info := make([]byte, 256)
		copy(info, fmt.Sprintf("=t%d_out= xt rule %d", i%tags, i))
		match := attr(unix.NFTA_MATCH_NAME, []byte("comment\x00"))
		match = append(match, attr(unix.NFTA_MATCH_REV, u32(0))...)
		match = append(match, attr(unix.NFTA_MATCH_INFO, info)...)
		exprs := append(append(payloadCmp(16, a), benchExpr("match", match)...), counterExpr(uint64(i+1), uint64(100*(i+1)))...)
		msgs = append(msgs, benchMessage{unix.NFPROTO_IPV4, benchRule("filter", "BENCH", uint64(i+4), exprs, nil)})
	}
	return msgs
}

// decodeRuleDump does what Read does with each message of a rule dump,
// its records allocated at once as a Collector that read the dump before
// does, with the memo of the last read (empty for a first read).
func decodeRuleDump(msgs []benchMessage, memo *ruleMemo) (collector.Reading, error) {
	reading := collector.Reading{Records: make([]collector.Record, 0, len(msgs))}
	rr := &ruleReader{reading: &reading, d: &dumper{}, overflow: map[setKey]*collector.Counter{}, memo: memo}
	for _, m := range msgs {
		if err := rr.rule(m.family, m.attrs); err != nil {
			return reading, err
		}
	}
	memo.done()
	return reading, nil
}

// BenchmarkParseRule decodes one rule message of each kind.
func BenchmarkParseRule(b *testing.B) {
	msgs := benchRuleDump(2)
	for _, bc := range []struct {
		name string
		msg  []byte
	}{{"native", msgs[0].attrs}, {"iptables-nft", msgs[1].attrs}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				if r, err := parseRule(bc.msg); err != nil || !r.hasComment || !r.hasCounter {
					b.Fatalf("%+v, %v", r, err)
				}
			}
		})
	}
}

// BenchmarkDecodeRuleDump decodes the whole rule dump of 20,000 rules into
// a Reading: the decode part of a scrape's collector read. "first" is a
// collector's first read, which hashes every rule's content; "again" a
// read after one of the same rules, which takes the contents from its memo.
func BenchmarkDecodeRuleDump(b *testing.B) {
	const n = 20000
	msgs := benchRuleDump(n)
	var size int64
	for _, m := range msgs {
		size += int64(len(m.attrs))
	}
	for _, again := range []bool{false, true} {
		name := fmt.Sprintf("rules=%d/first", n)
		if again {
			name = fmt.Sprintf("rules=%d/again", n)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size)
			memo := &ruleMemo{}
			for b.Loop() {
				if !again {
					memo = &ruleMemo{}
				}
				r, err := decodeRuleDump(msgs, memo)
				if err != nil || len(r.Records) != n {
					b.Fatalf("%d records, %v", len(r.Records), err)
				}
			}
		})
	}
}

// benchSetElemDump is the element dump of a set of n IPv4 addresses with
// counters, cut into messages of about 32 KiB as the kernel sends them.
func benchSetElemDump(n int) [][]byte {
	key := []byte{10, 0, 0, 0}
	head := len(setElementsMessage(false, key))
	perElem := len(setElementsMessage(false, key, key)) - head
	perMsg := (32<<10 - head) / perElem
	var msgs [][]byte
	for start := 0; start < n; start += perMsg {
		var keys [][]byte
		for i := start; i < min(start+perMsg, n); i++ {
			keys = append(keys, []byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}
		msgs = append(msgs, setElementsMessage(false, keys...))
	}
	return msgs
}

// decodeSetElemDump does what readSets does with each element message of
// a per-address set, and dedupes the result as it does.
func decodeSetElemDump(msgs [][]byte) (collector.AddressSet, error) {
	var as collector.AddressSet
	for _, m := range msgs {
		err := parseElements(m, func(e element) {
			switch {
			case e.skip, len(e.key) != 4, !e.hasCounter:
			default:
				addr, _ := netip.AddrFromSlice(e.key)
				as.Elements = append(as.Elements, collector.AddressCount{Addr: addr, Packets: e.packets, Bytes: e.bytes})
			}
		})
		if err != nil {
			return as, err
		}
	}
	dedupe(&as, map[netip.Addr]struct{}{})
	return as, nil
}

// BenchmarkDecodeSetElements decodes the element dump of a set of 100,000
// addresses: the decode part of a scrape's collector read of that set.
func BenchmarkDecodeSetElements(b *testing.B) {
	const n = 100000
	msgs := benchSetElemDump(n)
	var size int64
	for _, m := range msgs {
		size += int64(len(m))
	}
	b.Run(fmt.Sprintf("addresses=%d", n), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			as, err := decodeSetElemDump(msgs)
			if err != nil || len(as.Elements) != n {
				b.Fatalf("%d elements, %v", len(as.Elements), err)
			}
		}
	})
	b.Run(fmt.Sprintf("addresses=%d/parse-only", n), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			got := 0
			for _, m := range msgs {
				if err := parseElements(m, func(element) { got++ }); err != nil {
					b.Fatal(err)
				}
			}
			if got != n {
				b.Fatalf("%d elements", got)
			}
		}
	})
}
