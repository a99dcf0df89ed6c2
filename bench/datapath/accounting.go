package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/managed"
)

// setsYAML is the rules.yaml of the sets case: one entry covering the
// sender's and the receiver's networks and the filler addresses, counted
// where a gateway counts, at forward; direction both (the default).
const setsYAML = `table: ipacct
addresses:
  - tag: bench
    description: data-path benchmark
    networks: [10.0.0.0/8]
    hooks: [forward]
    size: 262144
`

// fillerNet holds the addresses that fill the sets and chains: inside the
// entry's network, outside the lanes' own.
var fillerNet = netip.MustParsePrefix("10.64.0.0/10")

// filler is the i-th address of fillerNet.
func filler(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(64 + i>>16), byte(i >> 8), byte(i)})
}

// installSets applies the sets entry with the project's own code, as the
// exporter does, then fills the sets to l.n addresses a direction.
func (e *env) installSets(l *lane) error {
	f, err := config.Parse("datapath-rules.yaml", []byte(setsYAML))
	if err != nil {
		return err
	}
	rs, err := managed.Build(f)
	if err != nil {
		return err
	}
	conn, closeConn, err := managed.Dial(nsPath(l.rtr))
	if err != nil {
		return err
	}
	_, err = managed.Apply(conn, rs)
	closeConn()
	if err != nil {
		return fmt.Errorf("applying the sets: %w", err)
	}
	l.table = rs.Table
	l.outOwn, l.inOwn = map[netip.Addr]string{}, map[netip.Addr]string{}
	for _, s := range rs.Sets {
		switch {
		case strings.HasPrefix(s.Comment, "=bench_out="):
			l.outSets = append(l.outSets, s.Name)
		case strings.HasPrefix(s.Comment, "=bench_in="):
			l.inSets = append(l.inSets, s.Name)
		}
	}
	if len(l.outSets) == 0 || len(l.inSets) == 0 {
		return fmt.Errorf("the built ruleset lacks the bench_out or bench_in sets: %+v", rs.Sets)
	}
	return e.fillSets(l)
}

// fillSets fills the sets with traffic: l.n-8 filler sources to the
// receiver (the out sets: the fillers and the test's 8 sources), and from
// a test source to l.n-1 filler destinations (the in sets: those and the
// receiver). So the data path itself puts every address where the
// managed ruleset keeps it, however it splits a set.
func (e *env) fillSets(l *lane) error {
	// The router routes the fillers towards the receiver, which drops
	// them; and it takes packets from fillers on the sender's side.
	if err := script(l.rtr,
		"ip route add "+fillerNet.String()+" via "+receiverAddr.Addr().String(),
		"sysctl net.ipv4.conf.all.rp_filter=0",
		"sysctl net.ipv4.conf."+l.rinIf+".rp_filter=0",
	); err != nil {
		return err
	}
	type flow struct{ src, dst netip.Addr }
	var flows []flow
	for _, s := range sources {
		flows = append(flows, flow{s, receiverAddr.Addr()})
	}
	for i := 0; i < l.n-len(sources); i++ {
		flows = append(flows, flow{filler(i), receiverAddr.Addr()})
	}
	for i := 0; i < l.n-1; i++ {
		flows = append(flows, flow{sources[0], filler(i)})
	}
	var out, in int
	// A packet the router's ring had no room for leaves its address out:
	// send again until the sets are full. Updating an element again only
	// counts.
	for pass := 0; pass < 5; pass++ {
		err := netns.Do(nsPath(l.snd), func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			pkt := make([]byte, 20+8+payload)
			for i, f := range flows {
				rawUDP(pkt, f.src, f.dst)
				if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: f.dst.As4()}); err != nil && !transient(err) {
					return err
				}
				// Paced below what the router forwards, so that its ring
				// seldom overflows.
				if i%256 == 255 {
					time.Sleep(time.Millisecond)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("filling the sets: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
		if out, err = e.countSet(l, l.outSets, sources, l.outOwn); err != nil {
			return err
		}
		if in, err = e.countSet(l, l.inSets, []netip.Addr{receiverAddr.Addr()}, l.inOwn); err != nil {
			return err
		}
		if out > l.n || in > l.n {
			return fmt.Errorf("filling the sets: %d and %d addresses, more than the %d sent", out, in, l.n)
		}
		if out == l.n && in == l.n && len(l.outOwn) == len(sources) && len(l.inOwn) == 1 {
			return nil
		}
	}
	return fmt.Errorf("filling the sets: %d and %d addresses after 5 passes, want %d", out, in, l.n)
}

// countSet counts the addresses in the sets and records which set holds
// each of own.
func (e *env) countSet(l *lane, sets []string, own []netip.Addr, where map[netip.Addr]string) (int, error) {
	n := 0
	for _, set := range sets {
		txt, err := runIn(l.rtr, "", "nft", "list", "set", "inet", l.table, set)
		if err != nil {
			return 0, err
		}
		for _, m := range elemCounter.FindAllStringSubmatch(txt, -1) {
			n++
			if a, err := netip.ParseAddr(m[1]); err == nil && slices.Contains(own, a) {
				where[a] = set
			}
		}
	}
	return n, nil
}

// rawUDP writes an IPv4 UDP packet from src to dst into pkt; the kernel
// fills the IP checksum, length and id, and a UDP checksum of 0 is none.
func rawUDP(pkt []byte, src, dst netip.Addr) {
	clear(pkt)
	pkt[0] = 0x45 // IPv4, 20-byte header
	pkt[8] = 64   // TTL
	pkt[9] = unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(pkt[12:16], s[:])
	copy(pkt[16:20], d[:])
	binary.BigEndian.PutUint16(pkt[20:], 1024)
	binary.BigEndian.PutUint16(pkt[22:], udpPort)
	binary.BigEndian.PutUint16(pkt[24:], uint16(len(pkt)-20))
}

// installRules writes the seeds' accounting: a FORWARD jump to a chain of
// one rule per address, the test's sources last.
func (e *env) installRules(l *lane) error {
	var b strings.Builder
	b.WriteString("*filter\n:FORWARD ACCEPT [0:0]\n:ACCT - [0:0]\n-A FORWARD -j ACCT\n")
	rule := func(a netip.Addr) {
		fmt.Fprintf(&b, "-A ACCT -s %s/32 -m comment --comment \"=h%s_up=\"\n", a, a)
	}
	for i := 0; i < l.n-len(sources); i++ {
		rule(filler(i))
	}
	for _, a := range sources {
		rule(a)
	}
	b.WriteString("COMMIT\n")
	_, err := runIn(l.rtr, b.String(), "iptables-restore")
	return err
}

// accounted is what a lane's accounting counted for the test traffic, in
// packets: per check, the name of the counter and its value.
func accounted(l *lane) (map[string]uint64, error) {
	switch l.kind {
	case caseSets:
		out, err := setCounters(l.rtr, l.table, l.outOwn)
		if err != nil {
			return nil, err
		}
		in, err := setCounters(l.rtr, l.table, l.inOwn)
		if err != nil {
			return nil, err
		}
		return map[string]uint64{"out sets, sources": out, "in sets, receiver": in}, nil
	case caseRules:
		n, err := ruleCounters(l.rtr, sources)
		if err != nil {
			return nil, err
		}
		return map[string]uint64{"rules of the sources": n}, nil
	}
	return nil, nil
}

var elemCounter = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+) counter packets (\d+) bytes \d+`)

// setCounters sums the packet counters of the addresses in the sets
// that hold them, reading only those elements (`nft get element`), not
// whole sets.
func setCounters(ns, table string, where map[netip.Addr]string) (uint64, error) {
	bySet := map[string][]string{}
	for a, set := range where {
		bySet[set] = append(bySet[set], a.String())
	}
	var sum uint64
	for set, list := range bySet {
		out, err := runIn(ns, "", "nft", "get", "element", "inet", table, set, "{ "+strings.Join(list, ", ")+" }")
		if err != nil {
			return 0, err
		}
		found := 0
		for _, m := range elemCounter.FindAllStringSubmatch(out, -1) {
			p, _ := strconv.ParseUint(m[2], 10, 64)
			sum += p
			found++
		}
		if found != len(list) {
			return 0, fmt.Errorf("set %s: %d of %d elements with a counter:\n%.2000s", set, found, len(list), out)
		}
	}
	return sum, nil
}

var saveRule = regexp.MustCompile(`^\[(\d+):\d+\] -A ACCT -s (\S+)/32 `)

// ruleCounters sums the packet counters of the rules for addrs.
func ruleCounters(ns string, addrs []netip.Addr) (uint64, error) {
	out, err := runIn(ns, "", "iptables-save", "-c", "-t", "filter")
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a.String()] = true
	}
	var sum uint64
	found := 0
	for _, line := range strings.Split(out, "\n") {
		m := saveRule.FindStringSubmatch(line)
		if m == nil || !want[m[2]] {
			continue
		}
		p, _ := strconv.ParseUint(m[1], 10, 64)
		sum += p
		found++
	}
	if found != len(addrs) {
		return 0, fmt.Errorf("%d of %d rules of the sources in iptables-save -c", found, len(addrs))
	}
	return sum, nil
}
