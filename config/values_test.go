package config

import (
	"slices"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// TestValues: each word of rules.yaml converts to what netfilter and flow
// records use.
func TestValues(t *testing.T) {
	numbers := map[Protocol]uint8{ProtocolTCP: unix.IPPROTO_TCP, ProtocolUDP: unix.IPPROTO_UDP,
		ProtocolICMP: unix.IPPROTO_ICMP, ProtocolICMPv6: unix.IPPROTO_ICMPV6, ProtocolAny: 0}
	for _, p := range protocols {
		if got, want := p.Number(), numbers[p]; got != want {
			t.Errorf("%s: protocol number %d, want %d", p, got, want)
		}
	}
	for _, c := range []struct {
		p      Protocol
		fits4  bool
		fits6  bool
		only   family.Address
		onlyOK bool
	}{
		{ProtocolTCP, true, true, "", false},
		{ProtocolAny, true, true, "", false},
		{ProtocolICMP, true, false, family.IPv4, true},
		{ProtocolICMPv6, false, true, family.IPv6, true},
	} {
		only, ok := c.p.Family()
		if c.p.Fits(family.IPv4) != c.fits4 || c.p.Fits(family.IPv6) != c.fits6 || only != c.only || ok != c.onlyOK {
			t.Errorf("%s: fits ipv4 %v, ipv6 %v; family %q, %v", c.p, c.p.Fits(family.IPv4), c.p.Fits(family.IPv6), only, ok)
		}
	}

	hooks := map[Hook]*nftables.ChainHook{HookInput: nftables.ChainHookInput, HookOutput: nftables.ChainHookOutput, HookForward: nftables.ChainHookForward}
	sees := map[Hook][]tag.Direction{HookInput: {tag.In}, HookOutput: {tag.Out}, HookForward: {tag.In, tag.Out}}
	for _, h := range Hooks {
		if got := h.NFT(); got == nil || *got != *hooks[h] {
			t.Errorf("%s: hook %v", h, got)
		}
		for _, d := range []tag.Direction{tag.In, tag.Out} {
			if h.Sees(d) != slices.Contains(sees[h], d) {
				t.Errorf("%s sees %s: %v", h, d, h.Sees(d))
			}
		}
	}
	if Hook("prerouting").NFT() != nil || Hook("prerouting").Sees(tag.In) {
		t.Error("an unknown hook converts")
	}

	if CountAccepted.Priority() != 10 || CountAll.Priority() != -10 {
		t.Errorf("priorities %d, %d; want filter+10 and filter-10", CountAccepted.Priority(), CountAll.Priority())
	}
	for d, want := range map[Direction][]tag.Direction{DirectionIn: {tag.In}, DirectionOut: {tag.Out}, DirectionBoth: {tag.In, tag.Out}} {
		if got := d.Tags(); !slices.Equal(got, want) {
			t.Errorf("%s: %v", d, got)
		}
	}
	for f, want := range map[Family][]family.Address{FamilyIPv4: {family.IPv4}, FamilyIPv6: {family.IPv6}, FamilyBoth: family.Addresses} {
		if got := f.Addresses(); !slices.Equal(got, want) {
			t.Errorf("%s: %v", f, got)
		}
	}
}
