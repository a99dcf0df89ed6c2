package nftmatch

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// String is the match in canonical nft syntax: what nft list prints back
// for it, as near as the subset allows (see the package documentation for
// where it differs). Parse reads it back to the same match, and nft
// compiles it to the same rule as the original text.
func (m *Match) String() string {
	parts := make([]string, len(m.rels))
	for i, r := range m.rels {
		parts[i] = r.text(r.elems, r.set)
	}
	return strings.Join(parts, " ")
}

// text prints the relation with the given values: a set if set, else the
// single value in elems.
func (r *relation) text(elems []elem, set bool) string {
	s := r.sel
	var b strings.Builder
	b.WriteString(s.name)
	// nft prints a masked bit mask as VALUE / MASK, and reads it back
	// when both are names: not 0x0 / syn, nor syn / 0x12 (a prefix).
	slash := s.kind == kindFlags && r.hasMask && !set && elems[0].lo != 0 &&
		!strings.HasPrefix(flagsText(s, r.mask, ","), "0x")
	if r.hasMask && !slash {
		// SELECTOR & MASK OP VALUE, as nft prints a masked number.
		fmt.Fprintf(&b, " & %s", maskText(s, r.mask))
		op := r.op
		if op == opImplicit {
			op = opEq
		}
		v := valuesText(s, elems, set)
		if !set {
			v = valueText(s, elems[0], true)
		}
		fmt.Fprintf(&b, " %s %s", opText[op], v)
		return b.String()
	}
	switch {
	case s.kind == kindFlags && !r.hasMask && (r.op == opEq || r.op == opImplicit && r.set && !set):
		// For a bit mask, == is exact and no operator means "any of";
		// the elements of a set are exact.
		b.WriteString(" ==")
	case r.op != opImplicit && r.op != opEq:
		b.WriteString(" " + opText[r.op])
	}
	b.WriteString(" " + valuesText(s, elems, set))
	if r.hasMask {
		// A masked bit mask prints as nft prints it: VALUE / MASK.
		b.WriteString(" / " + flagsText(s, r.mask, ","))
	}
	return b.String()
}

func valuesText(s *selector, elems []elem, set bool) string {
	if !set {
		return valueText(s, elems[0], false)
	}
	parts := make([]string, len(elems))
	for i, e := range elems {
		parts[i] = valueText(s, e, true)
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// valueText prints one value. In a set, bit mask values join with | since
// the comma separates elements.
func valueText(s *selector, e elem, inSet bool) string {
	switch s.kind {
	case kindAddr4, kindAddr6:
		switch {
		case e.rng:
			return e.a.String() + "-" + e.b.String()
		case e.bits >= 0:
			return netip.PrefixFrom(e.a, e.bits).String()
		}
		return e.a.String()
	case kindIfname:
		if e.wild {
			return strconv.Quote(e.name + "*")
		}
		return strconv.Quote(e.name)
	case kindFlags:
		sep := ","
		if inSet {
			sep = "|"
		}
		return flagsText(s, e.lo, sep)
	}
	if e.rng {
		// nft cannot read a range of names for every type: numbers.
		return rangeNum(s, e.lo) + "-" + rangeNum(s, e.hi)
	}
	return numText(s, e.lo)
}

// numText prints a single number of the selector: by name where nft
// prints one.
func numText(s *selector, v uint64) string {
	switch s.kind {
	case kindFlags:
		return flagsText(s, v, ",")
	case kindSym, kindDSCP, kindPriority:
		for _, sym := range s.names {
			if sym.val == v {
				return sym.name
			}
		}
	}
	return rangeNum(s, v)
}

// rangeNum prints a number without names.
func rangeNum(s *selector, v uint64) string {
	switch {
	case s.hex8:
		return fmt.Sprintf("0x%08x", v)
	case s.kind == kindDSCP:
		return fmt.Sprintf("0x%02x", v)
	case s.kind == kindPriority:
		return fmt.Sprintf("%x:%x", v>>16, v&0xffff)
	}
	return strconv.FormatUint(v, 10)
}

// flagsText prints a bit mask value as nft does: names in bit order, or
// hex when a bit has no name.
func flagsText(s *selector, v uint64, sep string) string {
	var names []string
	for rest := v; rest != 0; rest &= rest - 1 {
		bit := uint64(1) << bits.TrailingZeros64(rest)
		name := ""
		for _, sym := range s.names {
			if sym.val == bit {
				name = sym.name
				break
			}
		}
		if name == "" {
			return fmt.Sprintf("0x%x", v)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return "0x0"
	}
	return strings.Join(names, sep)
}

// maskText prints the mask after &: (a|b) for several flags.
func maskText(s *selector, v uint64) string {
	if s.kind != kindFlags {
		if s.hex8 {
			return fmt.Sprintf("0x%08x", v)
		}
		return fmt.Sprintf("0x%x", v)
	}
	t := flagsText(s, v, "|")
	if strings.Contains(t, "|") {
		return "(" + t + ")"
	}
	return t
}
