// Package family names the two kinds of family the exporter meets, each
// with one type, its values, and its conversions to netfilter's numbers:
// the address family of traffic (Address: ipv4, ipv6), and the family of a
// netfilter table (Table: ip, ip6, inet, arp, bridge, netdev). Users see
// the first as the family label and rules.yaml's family key, the second
// as the table_family label.
package family

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Address is an address family: IPv4 or IPv6.
type Address string

// The address families, as labels and rules.yaml write them.
const (
	IPv4 Address = "ipv4"
	IPv6 Address = "ipv6"
)

// Addresses are both address families, IPv4 first.
var Addresses = []Address{IPv4, IPv6}

// Of returns the family of an address.
func Of(a netip.Addr) Address {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// ParseAddress parses "ipv4" or "ipv6".
func ParseAddress(s string) (Address, error) {
	switch a := Address(s); a {
	case IPv4, IPv6:
		return a, nil
	}
	return "", fmt.Errorf("%q is not an address family; use ipv4 or ipv6", s)
}

// Name is how people write the family in prose: IPv4 or IPv6.
func (a Address) Name() string {
	if a == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Table is the netfilter table family of the address family: ip or ip6.
func (a Address) Table() Table {
	if a == IPv6 {
		return IP6
	}
	return IP
}

// NFProto is the address family's number in nftables' meta nfproto.
func (a Address) NFProto() byte {
	if a == IPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// Bits is the length of the family's addresses in bits.
func (a Address) Bits() int {
	if a == IPv6 {
		return 128
	}
	return 32
}

// SetType is google/nftables' type of a set of the family's addresses:
// ipv4_addr or ipv6_addr, as nft names it.
func (a Address) SetType() nftables.SetDatatype {
	if a == IPv6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// Table is a netfilter table family.
type Table string

// The netfilter table families, as nft writes them.
const (
	IP     Table = "ip"
	IP6    Table = "ip6"
	Inet   Table = "inet"
	ARP    Table = "arp"
	Bridge Table = "bridge"
	Netdev Table = "netdev"
)

var (
	toNFT = map[Table]nftables.TableFamily{
		IP:     nftables.TableFamilyIPv4,
		IP6:    nftables.TableFamilyIPv6,
		Inet:   nftables.TableFamilyINet,
		ARP:    nftables.TableFamilyARP,
		Bridge: nftables.TableFamilyBridge,
		Netdev: nftables.TableFamilyNetdev,
	}
	fromNFT = func() map[nftables.TableFamily]Table {
		m := make(map[nftables.TableFamily]Table, len(toNFT))
		for t, f := range toNFT {
			m[f] = t
		}
		return m
	}()
)

// FromNFT returns the table family of google/nftables' number for it, and
// false for a number netfilter does not define.
func FromNFT(f nftables.TableFamily) (Table, bool) {
	t, ok := fromNFT[f]
	return t, ok
}

// NFT is google/nftables' number for the table family; 0 (unspecified) for
// an unknown one.
func (t Table) NFT() nftables.TableFamily { return toNFT[t] }

// Counts tells whether a table of this family can count traffic of the
// address family: ip and ip6 one each, inet both.
func (t Table) Counts(a Address) bool {
	return t == Inet || t == a.Table()
}
