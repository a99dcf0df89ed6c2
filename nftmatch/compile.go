package nftmatch

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/ipacct/ipacct_exporter/family"
)

// Alternative is one rule a match expands to: the expressions to put in
// the rule before its counter, and the same in nft syntax. nft compiles
// the text, after "meta nfproto ipv4 " or "meta nfproto ipv6 ", to the same
// expressions (see the package documentation for the one exception).
type Alternative struct {
	Text  string
	Exprs []expr.Any
}

// Families are the families the match can apply to: IPv4, IPv6, or both,
// in that order.
func (m *Match) Families() []family.Address { return slices.Clone(m.families) }

// Rules returns the alternatives for a family as expression lists: one
// rule each, all in a chain whose rules check meta nfproto first. A packet
// matches at most one of them, so their counters sum to the match's count.
func (m *Match) Rules(fam family.Address) ([][]expr.Any, error) {
	alts, err := m.Alternatives(fam)
	if err != nil {
		return nil, err
	}
	out := make([][]expr.Any, len(alts))
	for i, a := range alts {
		out[i] = a.Exprs
	}
	return out, nil
}

// Alternatives returns the rules the match expands to for a family
// (IPv4 or IPv6), with their nft text. Each call returns new expressions.
func (m *Match) Alternatives(fam family.Address) ([]Alternative, error) {
	return m.AlternativesAfter(fam, 0)
}

// AlternativesAfter is Alternatives for a match that follows, in the same
// rule, an equality on meta l4proto (l4proto, e.g. unix.IPPROTO_TCP; 0 for
// none): as nft does, a tcp, udp or icmp selector then needs no meta
// l4proto check of its own, and one of another protocol is an error.
func (m *Match) AlternativesAfter(fam family.Address, l4proto uint8) ([]Alternative, error) {
	if fam != family.IPv4 && fam != family.IPv6 {
		return nil, fmt.Errorf("%q is not a family; use %q or %q", fam, family.IPv4, family.IPv6)
	}
	if !slices.Contains(m.families, fam) {
		for _, r := range m.rels {
			if r.sel.family != "" {
				return nil, errorf(r.pos, "%s matches %s only, so the match has no %s rule", r.sel.name, r.sel.family.Name(), fam.Name())
			}
		}
	}
	return m.alternatives(options{l4proto: l4proto})
}

// options of a compilation.
type options struct {
	l4proto uint8 // see AlternativesAfter
	// mergeNeq merges adjacent payload != matches as nft 1.0.6 does (a
	// bug): only for tests that compare with that nft.
	mergeNeq bool
}

// term is one relation of an alternative with its values: one, or all
// the values of a != set, each a relation of its own.
type term struct {
	rel   *relation
	elems []elem
}

// alternatives expands the sets after == (the cross product, in the
// order written) and compiles each combination.
func (m *Match) alternatives(o options) ([]Alternative, error) {
	combos := [][]term{nil}
	for _, r := range m.rels {
		var choices [][]elem
		if r.set && r.op != opNeq {
			for _, e := range r.elems {
				choices = append(choices, []elem{e})
			}
		} else {
			choices = [][]elem{r.elems}
		}
		next := make([][]term, 0, len(combos)*len(choices))
		for _, c := range combos {
			for _, ch := range choices {
				next = append(next, append(slices.Clip(c), term{r, ch}))
			}
		}
		combos = next
	}
	alts := make([]Alternative, 0, len(combos))
	for _, c := range combos {
		a, err := compile(c, o)
		if err != nil {
			return nil, err
		}
		alts = append(alts, a)
	}
	return alts, nil
}

// asserts returns the transport protocol the term says the packet has:
// an equality on meta l4proto, ip protocol or ip6 nexthdr.
func (t term) asserts() (uint8, bool) {
	r := t.rel
	if !r.sel.protoKey || (r.op != opImplicit && r.op != opEq) || r.hasMask || len(t.elems) != 1 || t.elems[0].rng {
		return 0, false
	}
	return uint8(t.elems[0].lo), true
}

// stmt is one statement of a rule in the making, as nft keeps it until it
// merges payload matches.
type stmt struct {
	exprs []expr.Any
	// A payload equality nft may merge with its neighbours.
	merge     bool
	base      expr.PayloadBase
	off, len  uint32
	data      []byte
	protoFlag bool
	neq       bool // a != (merged only with another, see options)
	gone      bool
}

// compile turns one combination into a rule, with the dependencies and
// payload merges nft would make of its text in an inet table.
func compile(terms []term, o options) (Alternative, error) {
	// The transport protocols the rule's equalities on meta l4proto, ip
	// protocol and ip6 nexthdr assert, anywhere in it. A tcp, udp or icmp
	// selector needs them all to be its own: nft's handling of other
	// cases differs between meta and payload keys, between known and
	// unknown protocols, and at times fails an assertion; the rules could
	// never match anyway (unless IPv6 extension headers come between).
	var asserted []uint8
	if o.l4proto != 0 {
		asserted = append(asserted, o.l4proto)
	}
	for _, t := range terms {
		if p, ok := t.asserts(); ok {
			asserted = append(asserted, p)
		}
	}
	ctx := o.l4proto // the transport protocol the rule has established, or 0
	var stmts []*stmt
	var text []string
	for _, t := range terms {
		s := t.rel.sel
		for _, e := range t.elems {
			if s.dep != 0 {
				for _, p := range asserted {
					if p != s.dep {
						return Alternative{}, errorf(t.rel.pos, "conflicting protocols specified: %s vs. %s (%s needs %s)",
							protoName(p), protoName(s.dep), s.name, protoName(s.dep))
					}
				}
				switch {
				case ctx == 0:
					stmts = append(stmts, &stmt{exprs: []expr.Any{
						&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{s.dep}},
					}})
					ctx = s.dep
				case ctx != s.dep:
					return Alternative{}, errorf(t.rel.pos, "conflicting protocols specified: %s vs. %s (%s needs %s)",
						protoName(ctx), protoName(s.dep), s.name, protoName(s.dep))
				}
			}
			stmts = append(stmts, relStmt(t.rel, e, o))
			if p, ok := t.asserts(); ok && ctx == 0 {
				ctx = p
			}
			text = append(text, t.rel.text([]elem{e}, false))
		}
	}
	mergePayloads(stmts)
	var a Alternative
	for _, s := range stmts {
		if !s.gone {
			a.Exprs = append(a.Exprs, s.exprs...)
		}
	}
	a.Text = strings.Join(text, " ")
	if len(a.Exprs) > MaxExprs {
		return Alternative{}, errorf(terms[0].rel.pos, "a rule of the match needs %d expressions; at most %d fit (each value of a != set adds two)", len(a.Exprs), MaxExprs)
	}
	return a, nil
}

// ProtocolNumber is the IP protocol number of a protocol name that meta
// l4proto takes (tcp, udp, icmp, icmpv6, ...): the one table of them.
func ProtocolNumber(name string) (uint8, bool) {
	for _, s := range protocols {
		if s.name == name {
			return uint8(s.val), true
		}
	}
	return 0, false
}

func protoName(p uint8) string {
	for _, s := range protocols {
		if s.val == uint64(p) {
			return s.name
		}
	}
	return fmt.Sprint(p)
}

// relStmt compiles one relation with one value, as nft's netlink
// linearization does.
func relStmt(r *relation, e elem, o options) *stmt {
	s := r.sel
	st := &stmt{}
	size := uint32(s.size)
	var load expr.Any
	switch s.src {
	case srcMeta:
		load = &expr.Meta{Key: s.meta, Register: 1}
	case srcCt:
		load = &expr.Ct{Key: s.ct, Register: 1}
	default:
		p := &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: s.base, Offset: s.offset, Len: size}
		load = p
		// A prefix on a byte boundary loads only the bytes it fixes.
		if e.bits > 0 && e.bits%8 == 0 {
			p.Len = uint32(e.bits / 8)
		}
	}
	x := []expr.Any{load}
	zeros := func(n uint32) []byte { return make([]byte, n) }
	bitwise := func(mask []byte) {
		x = append(x, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: zeros(uint32(len(mask)))})
	}
	cmp := func(o expr.CmpOp, data []byte) {
		x = append(x, &expr.Cmp{Op: o, Register: 1, Data: data})
	}
	// The value as the register holds it for ==, and in network order
	// for <, >, ranges (what byteorder makes of a host order number).
	host := func(v uint64) []byte { return s.encode(v, s.host) }
	net := func(v uint64) []byte { return s.encode(v, false) }
	if s.bitmask != nil {
		bitwise(slices.Clone(s.bitmask))
		e.lo <<= s.shift
		e.hi <<= s.shift
	}
	eqOp := expr.CmpOpEq
	if r.op == opNeq {
		eqOp = expr.CmpOpNeq
	}

	switch {
	case r.anyBits():
		bitwise(host(e.lo))
		cmp(expr.CmpOpNeq, zeros(size))
	case r.op == opNone:
		bitwise(host(e.lo))
		cmp(expr.CmpOpEq, zeros(size))
	case r.hasMask:
		bitwise(host(r.mask))
		cmp(eqOp, host(e.lo))
	case s.kind == kindIfname:
		data := make([]byte, size)
		copy(data, e.name)
		if e.wild {
			data = []byte(e.name)
		}
		cmp(eqOp, data)
	case s.kind == kindAddr4 || s.kind == kindAddr6:
		addr := e.a.AsSlice()
		switch {
		case e.rng:
			rangeExprs(&x, r.op, addr, e.b.AsSlice(), false)
		case e.bits > 0 && e.bits%8 == 0:
			cmp(eqOp, addr[:e.bits/8])
		case e.bits >= 0:
			mask := make([]byte, size)
			for i := 0; i < e.bits; i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			bitwise(mask)
			cmp(eqOp, addr)
		case r.op == opImplicit || r.op == opEq || r.op == opNeq:
			cmp(eqOp, addr)
			st.setMerge(r, s.offset, addr, o)
		default:
			cmp(ordered[r.op], addr)
		}
	case e.rng:
		rangeExprs(&x, r.op, net(e.lo), net(e.hi), s.host && size > 1)
	case r.op == opImplicit || r.op == opEq || r.op == opNeq:
		cmp(eqOp, host(e.lo))
		if s.src == srcPayload && s.bitmask == nil {
			st.setMerge(r, s.offset, host(e.lo), o)
		}
	default:
		if s.host && size > 1 {
			x = append(x, hton(size))
		}
		cmp(ordered[r.op], net(e.lo))
	}
	st.exprs = x
	return st
}

var ordered = map[op]expr.CmpOp{opLt: expr.CmpOpLt, opGt: expr.CmpOpGt, opLe: expr.CmpOpLte, opGe: expr.CmpOpGte}

func hton(size uint32) expr.Any {
	return &expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: size, Size: size}
}

// rangeExprs matches lo-hi as nft 1.0 does: two comparisons for ==, a
// range expression for !=, after a byteorder for host order numbers.
func rangeExprs(x *[]expr.Any, o op, lo, hi []byte, swap bool) {
	if swap {
		*x = append(*x, hton(uint32(len(lo))))
	}
	if o == opNeq {
		*x = append(*x, &expr.Range{Op: expr.CmpOpNeq, Register: 1, FromData: lo, ToData: hi})
		return
	}
	*x = append(*x,
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: lo},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: hi})
}

// setMerge marks an equality on a payload field as one nft may merge
// with an adjacent one. nft 1.0.6 merges != too, which is wrong (two
// != joined match unless both fields equal); this package merges == only,
// unless a test asks for nft 1.0.6's behaviour.
func (st *stmt) setMerge(r *relation, off uint32, data []byte, o options) {
	if r.op == opNeq && !o.mergeNeq {
		return
	}
	st.merge, st.base, st.off, st.len, st.data = true, r.sel.base, off, uint32(len(data)), data
	st.neq = r.op == opNeq
	st.protoFlag = r.sel.protoFlag
}

// encode is v in the selector's register bytes: network order, or host
// order if host.
func (s *selector) encode(v uint64, host bool) []byte {
	b := make([]byte, s.size)
	for i := 0; i < s.size && i < 8; i++ {
		b[s.size-1-i] = byte(v >> (8 * i))
	}
	if host && s.size > 1 && binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		slices.Reverse(b)
	}
	return b
}

// mergePayloads does what nft's payload_try_merge does to a rule:
// equalities on adjacent payload fields become one load and one
// comparison, if the result fits a register and nft deems it faster (at
// most 4 bytes, or one side already longer than 4). The merged match
// takes the place of the lower field, or of the higher one if that one
// names the next protocol (ip protocol, ip6 nexthdr).
func mergePayloads(stmts []*stmt) {
	var sa []*stmt
	for _, s := range stmts {
		if s.merge {
			sa = append(sa, s)
		}
	}
	if len(sa) < 2 {
		return
	}
	sort.SliceStable(sa, func(i, j int) bool {
		if sa[i].base != sa[j].base {
			return sa[i].base < sa[j].base
		}
		return sa[i].off < sa[j].off
	})
	last := sa[0]
	for _, this := range sa[1:] {
		total := last.len + this.len
		if last.base != this.base || last.off+last.len != this.off || total > 16 || last.neq != this.neq ||
			!(total <= 4 || last.len > 4 || this.len > 4) {
			last = this
			continue
		}
		data := append(slices.Clone(last.data), this.data...)
		keep, drop := last, this
		if this.protoFlag {
			keep, drop = this, last
		}
		keep.base, keep.off, keep.len, keep.data = last.base, last.off, total, data
		keep.protoFlag = this.protoFlag
		op := expr.CmpOpEq
		if keep.neq {
			op = expr.CmpOpNeq
		}
		keep.exprs = []expr.Any{
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: keep.base, Offset: keep.off, Len: total},
			&expr.Cmp{Op: op, Register: 1, Data: data},
		}
		drop.gone, drop.merge = true, false
		last = keep
	}
}
