package config

import (
	"github.com/google/nftables"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/nftmatch"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The closed vocabularies of rules.yaml. Each is a type whose values are
// written as the file writes them, with its conversion to what netfilter
// and flow records use in one place: a method of the type. Load returns
// valid values only; before validation a value may be anything the file
// said, so that validation can quote it.

// Source is where an entry's counts come from.
type Source string

// The sources.
const (
	// SourceKernel (the default): rules and sets in the exporter's table.
	SourceKernel Source = "kernel"
	// SourceFlow: NetFlow v5/v9 and IPFIX records that routers export to
	// the flow collector. Nothing is installed in the kernel.
	SourceFlow Source = "flow"
)

var sources = []Source{SourceKernel, SourceFlow}

// Count is where the counting chains sit, and so what they count.
type Count string

// The counts.
const (
	// CountAccepted (the default): after the filter, so only traffic the
	// firewall let through counts.
	CountAccepted Count = "accepted"
	// CountAll: before the filter, so dropped traffic counts too.
	CountAll Count = "all"
)

var counts = []Count{CountAccepted, CountAll}

// Priority is the counting chains' priority, relative to nft's filter
// priority: just after the filter or just before it.
func (c Count) Priority() int32 {
	if c == CountAll {
		return -10
	}
	return 10
}

// Direction is an entry's direction: in (traffic to the local side), out
// (traffic from it), or both.
type Direction string

// The directions of an entry.
const (
	DirectionIn   Direction = "in"
	DirectionOut  Direction = "out"
	DirectionBoth Direction = "both"
)

var directions = []Direction{DirectionIn, DirectionOut, DirectionBoth}

// Tags are the directions of the tag series the entry counts: tag.In,
// tag.Out, or both.
func (d Direction) Tags() []tag.Direction {
	switch d {
	case DirectionIn:
		return []tag.Direction{tag.In}
	case DirectionOut:
		return []tag.Direction{tag.Out}
	}
	return []tag.Direction{tag.In, tag.Out}
}

// Family is an accounting entry's family: one address family, or both.
type Family string

// The families of an accounting entry.
const (
	FamilyIPv4 = Family(family.IPv4)
	FamilyIPv6 = Family(family.IPv6)
	FamilyBoth = Family("both")
)

var families = []Family{FamilyIPv4, FamilyIPv6, FamilyBoth}

// Addresses are the address families the entry counts, IPv4 first.
func (f Family) Addresses() []family.Address {
	switch f {
	case FamilyIPv4:
		return []family.Address{family.IPv4}
	case FamilyIPv6:
		return []family.Address{family.IPv6}
	}
	return []family.Address{family.IPv4, family.IPv6}
}

// Hook is a netfilter hook where an entry counts.
type Hook string

// The hooks.
const (
	HookInput   Hook = "input"
	HookOutput  Hook = "output"
	HookForward Hook = "forward"
)

// Hooks are the hooks, in the order the table lists its base chains.
var Hooks = []Hook{HookInput, HookOutput, HookForward}

// NFT is google/nftables' number for the hook; nil for an unknown one.
func (h Hook) NFT() *nftables.ChainHook {
	switch h {
	case HookInput:
		return nftables.ChainHookInput
	case HookOutput:
		return nftables.ChainHookOutput
	case HookForward:
		return nftables.ChainHookForward
	}
	return nil
}

// Sees tells whether traffic of a direction passes the hook: traffic to
// the local side (in) enters at input, traffic from it (out) leaves at
// output, and forward carries both.
func (h Hook) Sees(d tag.Direction) bool {
	switch h {
	case HookInput:
		return d == tag.In
	case HookOutput:
		return d == tag.Out
	}
	return h == HookForward
}

// Protocol is a transport protocol an entry counts.
type Protocol string

// The protocols. Load stores any as an empty list of protocols.
const (
	ProtocolTCP    Protocol = "tcp"
	ProtocolUDP    Protocol = "udp"
	ProtocolICMP   Protocol = "icmp"
	ProtocolICMPv6 Protocol = "icmpv6"
	ProtocolAny    Protocol = "any"
)

var protocols = []Protocol{ProtocolTCP, ProtocolUDP, ProtocolICMP, ProtocolICMPv6, ProtocolAny}

// Number is the protocol's IP protocol number, as meta l4proto and flow
// records carry it; 0 for any. The names are nftmatch's, whose table
// holds the numbers.
func (p Protocol) Number() uint8 {
	n, _ := nftmatch.ProtocolNumber(string(p))
	return n
}

// Family is the one address family the protocol exists in: IPv4 for
// icmp, IPv6 for icmpv6. ok is false for the others, of both families.
func (p Protocol) Family() (a family.Address, ok bool) {
	switch p {
	case ProtocolICMP:
		return family.IPv4, true
	case ProtocolICMPv6:
		return family.IPv6, true
	}
	return "", false
}

// Fits tells whether the protocol exists in an address family.
func (p Protocol) Fits(a family.Address) bool {
	only, ok := p.Family()
	return !ok || only == a
}
