package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// natGatewayYAML counts seed 001's tenants on the gateway, at forward only:
// the gateway's own traffic (neighbour discovery from its inside address,
// say) is not the tenants'.
const natGatewayYAML = `
addresses:
  - tag: rent31
    description: Tenant in office 31
    networks: [198.51.100.0/25, 2001:db8:31::/64]
    hooks: [forward]
  - tag: rent32
    networks: [198.51.100.128/25]
    hooks: [forward]
`

// TestNATGatewayTenants is seed 001's building: two tenant LANs behind a
// gateway that masquerades them to an upstream network, all namespaces of
// the test. The upstream host has no route to the tenants, so its answers
// can only come back through the NAT. Each tenant address's in and out on
// /metrics must equal that host's traffic, under its inside address.
func TestNATGatewayTenants(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	gw := netnstest.New(t)
	office31 := netnstest.New(t)
	office32 := netnstest.New(t)
	upstream := netnstest.New(t)
	netnstest.Link(office31, "lan0", []string{"198.51.100.10/25", "198.51.100.11/25", "2001:db8:31::10/64"}, gw, "t31", []string{"198.51.100.1/25", "2001:db8:31::1/64"})
	netnstest.Link(office32, "lan0", []string{"198.51.100.130/25"}, gw, "t32", []string{"198.51.100.129/25"})
	netnstest.Link(gw, "up0", []string{"203.0.113.1/24", "2001:db8:ff::1/64"}, upstream, "eth0", []string{"203.0.113.2/24", "2001:db8:ff::2/64"})
	office31.Run("ip", "route", "add", "default", "via", "198.51.100.1")
	office31.Run("ip", "-6", "route", "add", "default", "via", "2001:db8:31::1")
	office32.Run("ip", "route", "add", "default", "via", "198.51.100.129")
	gw.Run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	gw.NFT(`table inet nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "up0" masquerade
	}
}`)

	path := writeFile(t, t.TempDir(), "rules.yaml", natGatewayYAML)
	e := startExporter(t, nil, "--netns="+gw.Path(), "--config.file="+path, "--no-collector.iptables")

	type host struct {
		ns       *netnstest.NS
		tag, src string
		dst      string
	}
	want := map[string]netnstest.Counter{} // "tag ip direction"
	for i, h := range []host{
		{office31, "rent31", "198.51.100.10", "203.0.113.2"},
		{office31, "rent31", "198.51.100.11", "203.0.113.2"},
		{office31, "rent31", "2001:db8:31::10", "2001:db8:ff::2"},
		{office32, "rent32", "198.51.100.130", "203.0.113.2"},
	} {
		// Each host its own sizes, so that a mix-up shows.
		sent, received := netnstest.Exchange(h.ns, net.JoinHostPort(h.src, strconv.Itoa(4000+i)), upstream, net.JoinHostPort(h.dst, strconv.Itoa(5000+i)), 100+50*i, 30+400*i, 3+i)
		want[h.tag+" "+h.src+" out"] = sent
		want[h.tag+" "+h.src+" in"] = received
	}

	_, fams := e.scrape(t)
	kernel := gw.NFTSetCounters()
	for k, w := range want {
		var tagName, ip, dir string
		fmt.Sscan(k, &tagName, &ip, &dir)
		labels := map[string]string{"tag": tagName, "ip": ip, "direction": dir, "family": string(family.Of(netip.MustParseAddr(ip)))}
		b, okB := value(fams, "ipacct_ip_bytes_total", labels)
		p, okP := value(fams, "ipacct_ip_packets_total", labels)
		if !okB || !okP || uint64(b) != w.Bytes || uint64(p) != w.Packets {
			t.Errorf("%s: /metrics has %v bytes, %v packets (present %v %v), the host exchanged %+v", k, b, p, okB, okP, w)
		}
		if k := fmt.Sprintf("=%s_%s= %s", tagName, dir, ip); kernel[k] != w {
			t.Errorf("%s: nft says %+v, the host exchanged %+v", k, kernel[k], w)
		}
	}
	if n := len(fams["ipacct_ip_bytes_total"].GetMetric()); n != len(want) {
		t.Errorf("%d per-address series, want %d: the upstream or gateway addresses must not be counted", n, len(want))
	}
	for _, g := range []struct {
		tag, family, dir    string
		addresses, capacity float64
	}{
		// The sets are sized from the networks: a /25 holds 128 addresses;
		// a /64 gets 65535, 4 shards of 16384 and an eighth.
		{"rent31", "ipv4", "out", 2, 128}, {"rent31", "ipv6", "in", 1, 4 * 18432}, {"rent32", "ipv4", "in", 1, 128},
	} {
		labels := map[string]string{"tag": g.tag, "family": g.family, "direction": g.dir}
		if v, _ := value(fams, "ipacct_ip_addresses", labels); v != g.addresses {
			t.Errorf("ipacct_ip_addresses%v = %v, want %v", labels, v, g.addresses)
		}
		if v, _ := value(fams, "ipacct_ip_capacity", labels); v != g.capacity {
			t.Errorf("ipacct_ip_capacity%v = %v, want %v", labels, v, g.capacity)
		}
		if v, ok := value(fams, "ipacct_ip_overflow_packets_total", labels); !ok || v != 0 {
			t.Errorf("ipacct_ip_overflow_packets_total%v = %v (present %v), want 0", labels, v, ok)
		}
	}
	if v, _ := value(fams, "ipacct_tag_info", map[string]string{"tag": "rent31"}); v != 1 {
		t.Error("no ipacct_tag_info for rent31")
	}
}
