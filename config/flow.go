package config

import (
	"fmt"
	"net/netip"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// maxInterfaces bounds an exporter's interface lists.
const maxInterfaces = 1000

var (
	flowsKeys    = []string{"exporters"}
	exporterKeys = []string{"address", "input_interfaces", "output_interfaces"}
)

// flows decodes the top-level flows mapping.
func (d *decoder) flows(val *yaml.Node, f *File, pos *filePos) {
	n := d.visit(val, "flows")
	if n == nil {
		return
	}
	pos.flows = n.Line
	if isNull(n) {
		d.noValue(n, "flows", "write exporters, or leave flows out")
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errs.add(n.Line, "flows", "expected a mapping with the key exporters, got %s", describe(n))
		return
	}
	d.mapping(n, "flows", flowsKeys, func(key string, keyLine int, val *yaml.Node) {
		d.entryList(val, "flows.exporters", "an address", &pos.exporters, func(n *yaml.Node, name string) entryPos {
			e, p := d.exporter(n, name)
			f.Flows.Exporters = append(f.Flows.Exporters, e)
			return p
		})
	})
}

func (d *decoder) exporter(n *yaml.Node, name string) (Exporter, entryPos) {
	e := Exporter{Line: n.Line}
	p := d.entryFields(n, name, exporterKeys, func(key, field string, val *yaml.Node, p *entryPos) {
		switch key {
		case "address":
			if s, line, ok := d.str(val, field, false); ok {
				a, err := parseExporterAddr(s)
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

func parseExporterAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%s is not an IP address; an exporter is the source address of its datagrams", quote(s))
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

// validateFlows checks the flows section.
func validateFlows(f *File, pos *filePos, errs *errList) {
	lp := pos.exporters
	if lp.line > 0 && len(f.Flows.Exporters) == 0 && lp.listed == 0 && !lp.broken {
		errs.add(lp.line, "flows.exporters", "no entries; leave exporters out to count the flows of any exporter")
	}
	seen := make(map[netip.Addr]string)
	for i := range f.Flows.Exporters {
		e := &f.Flows.Exporters[i]
		r := ref{line: e.Line, name: fmt.Sprintf("flows.exporters[%d]", i)}
		if i < len(lp.entries) {
			r.p = &lp.entries[i]
			r.name = fmt.Sprintf("flows.exporters[%d]", r.p.index)
		}
		line, field := r.field("address")
		switch {
		case !e.Address.IsValid():
			if r.missing("address") {
				errs.add(line, field, "missing; an exporter is the source address of its datagrams")
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
