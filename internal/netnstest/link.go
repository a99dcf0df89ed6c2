package netnstest

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// Link joins two of the test's namespaces with a veth pair: interface aIf
// in a with the addresses aAddrs, bIf in b with bAddrs (CIDR form). Both
// namespaces are the test's own, so traffic over the pair stays in them.
func Link(a *NS, aIf string, aAddrs []string, b *NS, bIf string, bAddrs []string) {
	a.t.Helper()
	cmd := exec.Command("ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("ip link add veth: %v: %s", err, out)
	}
	for _, side := range []struct {
		ns    *NS
		dev   string
		addrs []string
	}{{a, aIf, aAddrs}, {b, bIf, bAddrs}} {
		for _, addr := range side.addrs {
			if strings.Contains(addr, ":") {
				side.ns.Run("ip", "-6", "addr", "add", addr, "dev", side.dev, "nodad")
			} else {
				side.ns.Run("ip", "addr", "add", addr, "dev", side.dev)
			}
		}
		side.ns.Run("ip", "link", "set", side.dev, "up")
	}
}

// udpConn opens a UDP socket bound to addr inside the namespace. The socket
// stays in it when the calling thread leaves.
func (ns *NS) udpConn(addr string) *net.UDPConn {
	ns.t.Helper()
	var c *net.UDPConn
	err := netns.Do(ns.Path(), func() error {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", a)
		return err
	})
	if err != nil {
		ns.t.Fatalf("UDP socket on %s in %s: %v", addr, ns.Name, err)
	}
	ns.t.Cleanup(func() { c.Close() })
	return c
}

// Exchange sends count datagrams of payload bytes from src in client to dst
// in server (host:port, each an address of its namespace), and server
// answers each with reply bytes, which client waits for. It returns the
// bytes at the IP layer (header included) each way, as the kernel counts
// them before any NAT changes the addresses.
func Exchange(client *NS, src string, server *NS, dst string, payload, reply, count int) (sent, received Counter) {
	t := client.t
	t.Helper()
	srv := server.udpConn(dst)
	cli := client.udpConn(src)
	raddr, err := net.ResolveUDPAddr("udp", dst)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 65536)
		answer := make([]byte, reply)
		for i := 0; i < count; i++ {
			_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				done <- fmt.Errorf("server read %d of %d: %w", i+1, count, err)
				return
			}
			if n != payload {
				done <- fmt.Errorf("server got %d bytes, want %d", n, payload)
				return
			}
			if _, err := srv.WriteToUDP(answer, from); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 65536)
	msg := make([]byte, payload)
	for i := 0; i < count; i++ {
		// One at a time: nothing is lost to a full queue, so the counts
		// are exact.
		if _, err := cli.WriteToUDP(msg, raddr); err != nil {
			t.Fatalf("client write: %v", err)
		}
		_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cli.ReadFromUDP(buf)
		if err != nil || n != reply {
			t.Fatalf("client read %d of %d: %d bytes, %v", i+1, count, n, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	hdr := 20
	if strings.Contains(dst, "[") {
		hdr = 40
	}
	return Counter{uint64(count), uint64(count * (hdr + 8 + payload))}, Counter{uint64(count), uint64(count * (hdr + 8 + reply))}
}
