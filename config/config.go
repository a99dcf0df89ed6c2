// Package config loads and validates rules.yaml: what the exporter counts
// in the nftables table it owns. A File that Load returns is valid; nothing
// else makes one.
//
// Load (load.go) reads the file; the decoder (yaml.go) walks its YAML
// nodes into a File, and validate checks what they mean. Each section has
// a file with its decoding, defaults and checks: file.go the top level,
// accounting.go and addresses.go the two kinds of entry, flow.go the flow
// section; entry.go and prefix.go hold what both kinds of entry check.
// values.go has the closed vocabularies (source, count, direction, family,
// hook, protocol) and their conversions; errors.go collects the problems,
// each with the file, line and field it is about.
package config

import (
	"net/netip"
	"time"
)

// File is a loaded, validated rules.yaml.
type File struct {
	// Path is where the file was read from, for messages.
	Path string `yaml:"-"`
	// Table is the name of the inet table the exporter owns. Default "ipacct".
	Table string `yaml:"table"`
	// Count is where the counting chains sit: accepted (default; after the
	// filter at priority filter+10, so only traffic the firewall let through
	// counts) or all (priority filter-10: before the filter, so dropped
	// traffic counts too).
	Count Count `yaml:"count"`
	// Accounting lists what to count, one tag an entry.
	Accounting []Entry `yaml:"accounting"`
	// Addresses lists what to count per address, one tag an entry.
	Addresses []AddressEntry `yaml:"addresses"`
	// Flow says which routers' flows count, for the entries whose source
	// is flow.
	Flow Flow `yaml:"flow"`
}

// Flow filters the flow records by the router that exported them.
type Flow struct {
	// Routers, when given, are the only routers whose flows count, each
	// with optional interface filters. Empty: every router's count.
	Routers []Router `yaml:"routers"`
}

// Router is a router whose flows count. A flow that two interfaces of a
// router report (ingress on one, egress on the other) would count twice;
// the interface filters keep one of the reports.
type Router struct {
	// Address is the source address of the router's export datagrams.
	Address netip.Addr `yaml:"address"`
	// InputInterfaces, when given: traffic in (to a counted address)
	// counts only from flows whose input interface (SNMP ifIndex) is one
	// of these.
	InputInterfaces []uint32 `yaml:"input_interfaces"`
	// OutputInterfaces, when given: traffic out (from a counted address)
	// counts only from flows whose output interface is one of these.
	OutputInterfaces []uint32 `yaml:"output_interfaces"`

	// Line is where the router starts in the file, for messages.
	Line int `yaml:"-"`
}

// AddressEntry is one per-address accounting entry: a tag (a tenant, a
// group of servers) and its networks. The exporter counts each address of
// the networks that traffic is seen for, in sets of the kernel with a
// counter per address: one set per family and direction. Out is traffic
// whose source is the address, in traffic whose destination is.
type AddressEntry struct {
	Tag         string `yaml:"tag"`
	Description string `yaml:"description"`
	// Source is kernel (default: sets in the exporter's table) or flow
	// (the records routers export; such an entry has no hooks). Networks
	// of flow entries may nest: the longest prefix owns an address.
	Source Source `yaml:"source"`
	// Networks are the addresses or networks to count, IPv4 and/or IPv6.
	// They must not overlap any other address entry's.
	Networks []netip.Prefix `yaml:"networks"`
	// Direction is in, out or both (default).
	Direction Direction `yaml:"direction"`
	// Hooks are where to count: by default input, output and forward, so
	// that it works on a server and on a gateway. Out is counted at output
	// and forward, in at input and forward. Nil for a flow entry.
	Hooks []Hook `yaml:"hooks"`
	// Size is the most addresses each set holds; 0 (not given): see
	// SetSize. When a set is full, new addresses are not counted per
	// address; the overflow is counted per tag instead.
	Size uint32 `yaml:"size"`
	// Timeout, when set, drops an address that has seen no traffic for
	// that long, which frees its place in the set. If it comes back, its
	// counter starts again from zero.
	Timeout time.Duration `yaml:"timeout"`

	// Line is where the entry starts in the file, for messages.
	Line int `yaml:"-"`
}

// Entry is one accounting entry. Every list is OR'd; the fields are AND'ed.
// "Local" is the side being accounted: the server's own addresses, or a
// gateway's inside networks. From one entry come the rules for direction
// in (traffic to the local side) and out (traffic from it).
type Entry struct {
	// Tag is the tag label: letters, digits, '_', '.', '-'; 1 to 60
	// characters; no direction suffix (_in, _out, _up, _down): the exporter
	// adds it.
	Tag         string `yaml:"tag"`
	Description string `yaml:"description"`
	// Source is kernel (default: rules in the exporter's table) or flow
	// (the records routers export). A flow entry matches what flow
	// records carry: addresses, protocol and ports; it needs local, and
	// has no hooks, interface or match.
	Source Source `yaml:"source"`
	// Direction is in, out or both (default).
	Direction Direction `yaml:"direction"`
	// Family is ipv4, ipv6 or both. Default: the families of Local, Remote
	// and RemoteExcept when they name addresses, else both. Load always
	// sets it.
	Family Family `yaml:"family"`
	// Hooks are where to count: input, output, forward. Default
	// [input, output] (a server); a gateway names forward. Nil for a flow
	// entry.
	Hooks []Hook `yaml:"hooks"`
	// Local addresses or networks (empty: any).
	Local []netip.Prefix `yaml:"local"`
	// Remote addresses or networks (empty: any).
	Remote []netip.Prefix `yaml:"remote"`
	// RemoteExcept: remote addresses or networks not to count.
	RemoteExcept []netip.Prefix `yaml:"remote_except"`
	// Protocol: tcp, udp, icmp, icmpv6, or any (default). A scalar or a list.
	// Load stores any as an empty list: empty means any protocol. icmp needs
	// family ipv4, icmpv6 family ipv6.
	Protocol []Protocol `yaml:"protocol"`
	// Ports are local ports (tcp and udp only): numbers or "low-high".
	Ports []PortRange `yaml:"ports"`
	// Interface is the interface on the local side's path: the input
	// interface for direction in, the output interface for direction out.
	Interface string `yaml:"interface"`
	// Match is a raw nft match expression for anything else, such as
	// "meta mark 0x1". Reserved: Load rejects it until it can be validated.
	Match string `yaml:"match"`

	// Line is where the entry starts in the file, for messages.
	Line int `yaml:"-"`
}

// PortRange is a port or an inclusive range of ports.
type PortRange struct{ Low, High uint16 }
