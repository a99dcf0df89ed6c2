package family

import (
	"net/netip"
	"testing"

	"github.com/google/nftables"
)

func TestTableRoundTrip(t *testing.T) {
	for tbl, n := range toNFT {
		got, ok := FromNFT(n)
		if !ok || got != tbl || tbl.NFT() != n {
			t.Errorf("%s: FromNFT(%d) = %s, %v; NFT() = %d", tbl, n, got, ok, tbl.NFT())
		}
	}
	if _, ok := FromNFT(nftables.TableFamilyUnspecified); ok {
		t.Error("FromNFT(unspecified) is a family")
	}
}

func TestAddress(t *testing.T) {
	for _, c := range []struct {
		addr  string
		want  Address
		table Table
		bits  int
	}{
		{"192.0.2.1", IPv4, IP, 32},
		{"::ffff:192.0.2.1", IPv4, IP, 32},
		{"2001:db8::1", IPv6, IP6, 128},
	} {
		a := Of(netip.MustParseAddr(c.addr))
		if a != c.want || a.Table() != c.table || a.Bits() != c.bits {
			t.Errorf("%s: %s, table %s, %d bits", c.addr, a, a.Table(), a.Bits())
		}
		if !Inet.Counts(a) || !a.Table().Counts(a) || ARP.Counts(a) {
			t.Errorf("%s: Counts is wrong", c.addr)
		}
	}
	for a, name := range map[Address]string{IPv4: "ipv4_addr", IPv6: "ipv6_addr"} {
		if typ := a.SetType(); typ.Name != name || typ.Bytes != uint32(a.Bits()/8) {
			t.Errorf("%s: set type %s of %d bytes", a, typ.Name, typ.Bytes)
		}
	}
	if _, err := ParseAddress("both"); err == nil {
		t.Error(`ParseAddress("both") is a family`)
	}
	if a, err := ParseAddress("ipv6"); err != nil || a != IPv6 {
		t.Errorf(`ParseAddress("ipv6") = %s, %v`, a, err)
	}
}
