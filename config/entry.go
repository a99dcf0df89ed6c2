package config

import (
	"net/netip"
	"strconv"

	"github.com/ipacct/ipacct_exporter/tag"
)

// Directions are the directions the entry counts: tag.In, tag.Out, or both.
func (e Entry) Directions() []tag.Direction {
	switch e.Direction {
	case "in":
		return []tag.Direction{tag.In}
	case "out":
		return []tag.Direction{tag.Out}
	}
	return []tag.Direction{tag.In, tag.Out}
}

// Families are the netfilter families the entry counts in: "ip" for IPv4,
// "ip6" for IPv6, or both.
func (e Entry) Families() []string {
	switch e.Family {
	case "ipv4":
		return []string{"ip"}
	case "ipv6":
		return []string{"ip6"}
	}
	return []string{"ip", "ip6"}
}

// String writes the range as rules.yaml does: "443" or "8000-8080".
func (r PortRange) String() string {
	if r.Low == r.High {
		return strconv.Itoa(int(r.Low))
	}
	return strconv.Itoa(int(r.Low)) + "-" + strconv.Itoa(int(r.High))
}

// Directions are the directions the entry counts: tag.In, tag.Out, or both.
func (e AddressEntry) Directions() []tag.Direction {
	return Entry{Direction: e.Direction}.Directions()
}

// Families are the address families of the entry's networks: "ipv4",
// "ipv6", or both, in that order.
func (e AddressEntry) Families() []string {
	has4, has6 := families(e.Networks)
	var out []string
	if has4 {
		out = append(out, "ipv4")
	}
	if has6 {
		out = append(out, "ipv6")
	}
	return out
}

// NetworksOf are the entry's networks of one family ("ipv4" or "ipv6").
func (e AddressEntry) NetworksOf(family string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range e.Networks {
		if p.Addr().Is4() == (family == "ipv4") {
			out = append(out, p)
		}
	}
	return out
}

// SetSize is the most addresses each set of the family ("ipv4" or "ipv6")
// holds: Size when the file gives one, else what the family's networks
// hold, rounded up to a power of two, at most DefaultSetSize. A set never
// needs more than its networks hold (three addresses need no 65535), and
// the rounding lets a reload that adds an address or two keep the set and
// its counts: a set of another size is another set.
func (e AddressEntry) SetSize(family string) uint32 {
	if e.Size > 0 {
		return e.Size
	}
	var n uint64
	for _, p := range e.NetworksOf(family) {
		host := p.Addr().BitLen() - p.Bits()
		if host >= 16 {
			return DefaultSetSize
		}
		n += 1 << host
	}
	size := uint64(1)
	for size < n {
		size *= 2
	}
	return uint32(min(size, DefaultSetSize))
}
