package nftmatch

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// The test namespace's addresses, all on its loopback: "remote" sends to
// "local".
var (
	local4, remote4 = "192.0.2.1", "198.51.100.1"
	local6, remote6 = "2001:db8:f00d::1", "2001:db8:beef::1"
	testAddrs       = []string{local4 + "/24", remote4 + "/24", local6 + "/64", remote6 + "/64"}
)

// markRules set marks before the chains under test see a packet, so that
// meta mark and ct mark have something to match.
const markRules = `
	chain pre_out {
		type filter hook output priority -150; policy accept;
		udp dport 5001 meta mark set 0x00000001 ct mark set 0x00000010
		tcp dport 8080 meta mark set 0x00000002 ct mark set 0x00000020
	}
`

// sendTraffic sends the mix every equivalence case is counted against:
// UDP with and without a listener (the latter draws ICMP port
// unreachable, conntrack state related), UDP with DSCP and TTL set, TCP
// connections with data both ways and an orderly close, and ICMP echo,
// each over IPv4 and IPv6. Only addresses of the namespace are used.
func sendTraffic(ns *netnstest.NS) error {
	return netns.Do(ns.Path(), func() error {
		steps := []func() error{
			func() error { return udp(remote4, 40001, local4, 5001, 100, 3, nil, true) },
			func() error {
				return udp(remote4, 40053, local4, 53, 20, 2, sockopts{{unix.IPPROTO_IP, unix.IP_TOS, 0xb8}, {unix.IPPROTO_IP, unix.IP_TTL, 7}}, true)
			},
			func() error { return udp(remote4, 40009, local4, 9, 10, 1, nil, false) },
			func() error {
				return udp(remote6, 40002, local6, 5002, 200, 3, sockopts{{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x28}, {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 9}}, true)
			},
			func() error { return udp(remote6, 40019, local6, 9, 10, 1, nil, false) },
			// UDP to the TCP ports: a tcp selector without its meta
			// l4proto check would count these.
			func() error { return udp(remote4, 40081, local4, 8080, 30, 1, nil, true) },
			func() error { return udp(remote6, 40444, local6, 8443, 30, 1, nil, true) },
			func() error { return tcp(remote4, 40080, local4, 8080, 500, 300) },
			func() error { return tcp(remote6, 40443, local6, 8443, 700, 1300) },
			func() error { return ping("ip4:icmp", remote4, local4, 8, 56, 2) },
			func() error { return ping("ip6:ipv6-icmp", remote6, local6, 128, 32, 2) },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		// Let the last packets (TCP's final ACKs) pass every rule.
		time.Sleep(200 * time.Millisecond)
		return nil
	})
}

type sockopts [][3]int

func (o sockopts) control(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		for _, s := range o {
			if e := unix.SetsockoptInt(int(fd), s[0], s[1], s[2]); e != nil {
				err = e
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }

// udp sends count datagrams of size bytes; with listen, to a socket that
// takes them.
func udp(src string, sport int, dst string, dport, size, count int, opts sockopts, listen bool) error {
	if listen {
		ln, err := net.ListenPacket("udp", hostPort(dst, dport))
		if err != nil {
			return err
		}
		defer ln.Close()
	}
	laddr, err := net.ResolveUDPAddr("udp", hostPort(src, sport))
	if err != nil {
		return err
	}
	d := net.Dialer{LocalAddr: laddr, Control: opts.control}
	c, err := d.Dial("udp", hostPort(dst, dport))
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < count; i++ {
		if _, err := c.Write(make([]byte, size)); err != nil {
			return err
		}
	}
	return nil
}

// tcp opens a connection, sends up bytes, receives down bytes, and closes
// in order (FIN both ways).
func tcp(src string, sport int, dst string, dport, up, down int) error {
	ln, err := net.Listen("tcp", hostPort(dst, dport))
	if err != nil {
		return err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer s.Close()
		if _, err := io.ReadFull(s, make([]byte, up)); err != nil {
			done <- err
			return
		}
		if _, err := s.Write(make([]byte, down)); err != nil {
			done <- err
			return
		}
		_, err = io.Copy(io.Discard, s) // until the client's FIN
		done <- err
	}()
	laddr, err := net.ResolveTCPAddr("tcp", hostPort(src, sport))
	if err != nil {
		return err
	}
	d := net.Dialer{LocalAddr: laddr}
	c, err := d.Dial("tcp", hostPort(dst, dport))
	if err != nil {
		return err
	}
	if _, err := c.Write(make([]byte, up)); err != nil {
		c.Close()
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, down)); err != nil {
		c.Close()
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		c.Close()
		return err
	}
	if err := <-done; err != nil {
		c.Close()
		return err
	}
	// The server closed after the client's FIN: wait for its FIN.
	_, _ = io.Copy(io.Discard, c)
	return c.Close()
}

// ping sends count ICMP (or ICMPv6) echo requests of size payload bytes
// from a raw socket; the kernel answers them.
func ping(network, src, dst string, typ byte, size, count int) error {
	c, err := net.ListenPacket(network, src)
	if err != nil {
		return err
	}
	defer c.Close()
	raddr, err := net.ResolveIPAddr(network, dst)
	if err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		msg := make([]byte, 8+size)
		msg[0] = typ
		msg[4], msg[5] = 0x12, 0x34 // identifier
		msg[7] = byte(i + 1)        // sequence
		if typ == 8 {
			// ICMP's checksum is ours to fill; for ICMPv6 the kernel does.
			sum := checksum(msg)
			msg[2], msg[3] = byte(sum>>8), byte(sum)
		}
		if _, err := c.WriteTo(msg, raddr); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			// The raw socket sees the request too; wait for the reply.
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("no echo reply from %s: %w", dst, err)
			}
			if n > 0 && (buf[0] == 0 || buf[0] == 129) {
				break
			}
		}
	}
	return nil
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
