package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// parsePrefix parses an address ("192.0.2.1", meaning /32, or /128 for
// IPv6) or a network ("192.0.2.0/24"). Host bits are validate's concern.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s is not an IP network such as 192.0.2.0/24", quote(s))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not an IP address or network", quote(s))
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s has a zone; an address here has none", quote(s))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// addressFamilies reports which families the prefixes of the lists are of.
func addressFamilies(lists ...[]netip.Prefix) (has4, has6 bool) {
	for _, list := range lists {
		for _, p := range list {
			if p.Addr().Is4() {
				has4 = true
			} else if p.IsValid() {
				has6 = true
			}
		}
	}
	return has4, has6
}

// checkPrefixes reports whether every prefix of a list is valid. It rejects
// overlaps: a packet in two of them would be counted twice.
func (r ref) checkPrefixes(key string, list []netip.Prefix, errs *errList) bool {
	ok := true
	var spans []span[netip.Addr]
	for i, p := range list {
		switch {
		case !p.IsValid() || p.Addr().Zone() != "":
			r.itemError(errs, key, i, "not a valid address or network")
		case p != p.Masked():
			r.itemError(errs, key, i, "%s: host bits set, did you mean %s?", p, fmtPrefix(p.Masked()))
		case p.Addr().Is4In6():
			r.itemError(errs, key, i, "%s is IPv4-mapped; write %s", fmtPrefix(p), fmtPrefix(netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)))
		default:
			spans = append(spans, span[netip.Addr]{p.Addr(), lastAddr(p), i})
			continue
		}
		ok = false
	}
	for _, o := range overlaps(spans, netip.Addr.Compare) {
		a, b := fmtPrefix(list[o.later]), fmtPrefix(list[o.earlier])
		if a == b {
			r.itemError(errs, key, o.later, "%s is listed twice, also as %s", a, r.short(key, o.earlier))
		} else {
			r.itemError(errs, key, o.later, "%s overlaps %s at %s", a, b, r.short(key, o.earlier))
		}
		ok = false
	}
	return ok
}

// fmtPrefix writes a single address as an address, as the file may.
func fmtPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	hostBits := p.Addr().BitLen() - p.Bits()
	for i := 15; hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// span is an inclusive range of ordered values, item idx of a list.
type span[T any] struct {
	low, high T
	idx       int
}

// overlap is a pair of overlapping items, as written in the file.
type overlap struct{ earlier, later int }

// overlaps finds the items that overlap an item written before or after
// them, each later one reported once. Sorting first keeps it O(n log n) on
// long lists.
func overlaps[T any](spans []span[T], compare func(a, b T) int) []overlap {
	slices.SortStableFunc(spans, func(a, b span[T]) int {
		if c := compare(a.low, b.low); c != 0 {
			return c
		}
		return compare(b.high, a.high) // the wider first
	})
	var out []overlap
	reported := make(map[int]bool)
	for i, cover := 1, 0; i < len(spans); i++ {
		s, c := spans[i], spans[cover]
		if compare(s.low, c.high) <= 0 {
			o := overlap{min(s.idx, c.idx), max(s.idx, c.idx)}
			if !reported[o.later] {
				reported[o.later] = true
				out = append(out, o)
			}
		}
		if compare(s.high, c.high) > 0 {
			cover = i
		}
	}
	slices.SortFunc(out, func(a, b overlap) int { return cmp.Compare(a.later, b.later) })
	return out
}
