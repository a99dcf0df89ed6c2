package config

import (
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
