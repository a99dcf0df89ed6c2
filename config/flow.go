package config

import (
	"fmt"
	"net/netip"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxInterfaces bounds a router's interface lists.
const maxInterfaces = 1000

var (
	flowKeys   = []string{"routers"}
	routerKeys = []string{"address", "input_interfaces", "output_interfaces"}
)

// flow decodes the top-level flow mapping.
func (d *decoder) flow(val *yaml.Node, f *File, pos *filePos) {
	n := d.visit(val, "flow")
	if n == nil {
		return
	}
	pos.flow = n.Line
	if isNull(n) {
		d.noValue(n, "flow", "write routers, or leave flow out")
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errs.add(n.Line, "flow", "expected a mapping with the key routers, got %s", describe(n))
		return
	}
	d.mapping(n, "flow", flowKeys, func(key string, keyLine int, val *yaml.Node) {
		d.entryList(val, "flow.routers", "an address", &pos.routers, func(n *yaml.Node, name string) entryPos {
			e, p := d.router(n, name)
			f.Flow.Routers = append(f.Flow.Routers, e)
			return p
		})
	})
}

func (d *decoder) router(n *yaml.Node, name string) (Router, entryPos) {
	e := Router{Line: n.Line}
	p := d.entryFields(n, name, routerKeys, func(key, field string, val *yaml.Node, p *entryPos) {
		switch key {
		case "address":
			if s, line, ok := d.str(val, field, false); ok {
				a, err := parseRouterAddr(s)
				if err != nil {
					d.errs.add(line, field, "%v", err)
				}
				e.Address = a
			}
		case "input_interfaces":
			e.InputInterfaces = decodeItems(d, val, key, field, p, false, maxInterfaces, "leave input_interfaces out to count flows of any input interface", parseIfIndex)
		case "output_interfaces":
			e.OutputInterfaces = decodeItems(d, val, key, field, p, false, maxInterfaces, "leave output_interfaces out to count flows of any output interface", parseIfIndex)
		}
	})
	return e, p
}

func parseRouterAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%s is not an IP address; a router is the source address of its datagrams", quote(s))
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s has a zone; an address here has none", quote(s))
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%s is IPv4-mapped; write %s", s, a.Unmap())
	}
	return a, nil
}

// parseIfIndex parses an interface index (SNMP ifIndex), as flow records
// carry it: 32 bits, 0 for "unknown" in NetFlow v5.
func parseIfIndex(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s is not an interface index: a number from 0 to 4294967295, as in the router's SNMP ifIndex", quote(s))
	}
	return uint32(v), nil
}

// validateFlow checks the flow section.
func validateFlow(f *File, pos *filePos, errs *errList) {
	lp := pos.routers
	if lp.line > 0 && len(f.Flow.Routers) == 0 && lp.listed == 0 && !lp.broken {
		errs.add(lp.line, "flow.routers", "no entries; leave routers out to count the flows of any router")
	}
	seen := make(map[netip.Addr]string)
	for i := range f.Flow.Routers {
		e := &f.Flow.Routers[i]
		r := ref{line: e.Line, name: fmt.Sprintf("flow.routers[%d]", i)}
		if i < len(lp.entries) {
			r.p = &lp.entries[i]
			r.name = fmt.Sprintf("flow.routers[%d]", r.p.index)
		}
		line, field := r.field("address")
		switch {
		case !e.Address.IsValid():
			if r.missing("address") {
				errs.add(line, field, "missing; a router is the source address of its datagrams")
			}
		case seen[e.Address] != "":
			errs.add(line, field, "%s is listed twice, also as %s", e.Address, seen[e.Address])
		default:
			seen[e.Address] = r.name
		}
		for _, key := range []string{"input_interfaces", "output_interfaces"} {
			list := e.InputInterfaces
			if key == "output_interfaces" {
				list = e.OutputInterfaces
			}
			first := make(map[uint32]int)
			for j, v := range list {
				if k, twice := first[v]; twice {
					r.itemError(errs, key, j, "%d is listed twice, also as %s", v, r.short(key, k))
					continue
				}
				first[v] = j
			}
		}
	}
}
