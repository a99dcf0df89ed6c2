// Package netnstest gives tests a network namespace of their own, with
// addresses on its loopback, and the tools to set up rules and send traffic
// inside it. Traffic only ever goes to addresses of the namespace itself.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// RequireEnv names the variable that turns a skip for lack of root or of a
// tool into a failure. .ci/run sets it: on CI every kernel test must run.
const RequireEnv = "IPACCT_REQUIRE_ROOT_TESTS"

// Skip skips the test, or fails it when RequireEnv is set.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s is set, but: %s", RequireEnv, msg)
	}
	t.Skip(msg)
}

// RequireRoot skips (or fails, see RequireEnv) unless the test runs as root
// and every named tool is installed.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root for network namespaces and netfilter")
	}
	RequireTools(t, append([]string{"ip"}, tools...)...)
}

// RequireTools skips (or fails, see RequireEnv) unless every named tool is
// installed.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(t, "needs %s: %v", tool, err)
		}
	}
}

// NS is a network namespace that the test created and that is deleted when
// the test ends, whether it passed or not.
type NS struct {
	t       testing.TB
	Name    string
	deleted bool
}

// New creates a namespace with its loopback up and the given addresses
// (CIDR form, IPv4 or IPv6) on it.
func New(t testing.TB, addrs ...string) *NS {
	t.Helper()
	return NewInGroup(t, "test", addrs...)
}

// Group returns a random group name for NewInGroup, so that a glob over one
// test's namespaces matches none of another test's running beside it.
func Group(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// NewInGroup is New with the namespace named ipacct-GROUP-RANDOM.
func NewInGroup(t testing.TB, group string, addrs ...string) *NS {
	t.Helper()
	return NewNamed(t, "ipacct-"+group+"-"+Group(t), addrs...)
}

// NewNamed is New with the namespace named name, which may be any file
// name: not UTF-8, with control characters.
func NewNamed(t testing.TB, name string, addrs ...string) *NS {
	t.Helper()
	RequireRoot(t)
	ns := &NS{t: t, Name: name}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if ns.deleted {
			return
		}
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			ns.Run("ip", "-6", "addr", "add", a, "dev", "lo", "nodad")
		} else {
			ns.Run("ip", "addr", "add", a, "dev", "lo")
		}
	}
	return ns
}

// Delete deletes the namespace before the test ends.
func (ns *NS) Delete() {
	ns.t.Helper()
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		ns.t.Fatalf("ip netns del %s: %v: %s", ns.Name, err, out)
	}
	ns.deleted = true
}

// Path is the namespace's file, as the exporter's --netns takes it.
func (ns *NS) Path() string { return "/run/netns/" + ns.Name }

// Run runs a command inside the namespace and fails the test if it fails.
// It returns the command's standard output.
func (ns *NS) Run(name string, args ...string) string {
	ns.t.Helper()
	out, err := ns.Try(name, args...)
	if err != nil {
		ns.t.Fatal(err)
	}
	return out
}

// Try runs a command inside the namespace and returns its standard output,
// or an error with its standard error.
func (ns *NS) Try(name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// FirewallNFT is a native firewall table, as an operator's nftables.conf
// would have it beside the exporter's.
const FirewallNFT = `table inet fw {
	set allowed {
		type ipv4_addr
		elements = { 192.0.2.7 }
	}
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @allowed accept
	}
}
`

// Firewall gives the namespace what the exporter must never touch: the
// native table of FirewallNFT, an iptables-nft rule and an iptables-legacy
// rule.
func (ns *NS) Firewall() {
	ns.t.Helper()
	ns.NFT(FirewallNFT)
	ns.Run("iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	ns.Run("iptables-legacy", "-A", "INPUT", "-s", "192.0.2.9", "-j", "DROP")
}

// RulesetWithout is `nft -s list ruleset` without the table inet NAME:
// what the exporter, which manages that table, must leave as it was.
func (ns *NS) RulesetWithout(table string) string {
	ns.t.Helper()
	var keep []string
	skipping := false
	for _, line := range strings.Split(ns.Run("nft", "-s", "list", "ruleset"), "\n") {
		if line == "table inet "+table+" {" {
			skipping = true
		}
		if !skipping {
			keep = append(keep, line)
		}
		if skipping && line == "}" {
			skipping = false
		}
	}
	return strings.Join(keep, "\n")
}

// LegacySave is iptables-legacy-save without its "# Generated … on DATE"
// lines: the legacy tables, to compare before and after.
func (ns *NS) LegacySave() string {
	ns.t.Helper()
	var keep []string
	for _, l := range strings.Split(ns.Run("iptables-legacy-save"), "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// NFT loads a ruleset given in nft syntax into the namespace.
func (ns *NS) NFT(ruleset string) {
	ns.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		ns.t.Fatalf("nft -f: %v: %s\nruleset:\n%s", err, out, ruleset)
	}
}

// NFTJSON applies a ruleset change given in nft's JSON syntax, which can
// say what the plain syntax cannot (a '"' inside a comment).
func (ns *NS) NFTJSON(doc string) {
	ns.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-j", "-f", "-")
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		ns.t.Fatalf("nft -j -f: %v: %s\ninput:\n%s", err, out, doc)
	}
}

// SendUDP sends count datagrams of payload bytes each from src to dst
// (host:port, both addresses of this namespace) and returns the bytes the
// kernel counts for them at the IP layer (header included).
func (ns *NS) SendUDP(src, dst string, payload, count int) (ipBytes uint64) {
	ns.t.Helper()
	err := netns.Do(ns.Path(), func() error {
		laddr, err := net.ResolveUDPAddr("udp", src)
		if err != nil {
			return err
		}
		raddr, err := net.ResolveUDPAddr("udp", dst)
		if err != nil {
			return err
		}
		// A listener keeps the kernel from answering with ICMP port
		// unreachable, which the rules would count too.
		ln, err := net.ListenUDP("udp", raddr)
		if err != nil {
			return err
		}
		defer ln.Close()
		c, err := net.DialUDP("udp", laddr, raddr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, payload)
		for i := 0; i < count; i++ {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		// The output hook counts as the sender writes, but the input hook
		// only when the kernel's receive side gets to the packet, which on
		// a loaded machine can be after the test reads the counters. Once
		// the listener has every datagram, both hooks have counted them.
		in := make([]byte, payload+1)
		for i := 0; i < count; i++ {
			if err := ln.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				return err
			}
			if _, err := ln.Read(in); err != nil {
				return fmt.Errorf("datagram %d of %d did not arrive: %w", i+1, count, err)
			}
		}
		return nil
	})
	if err != nil {
		ns.t.Fatalf("sending UDP in %s: %v", ns.Name, err)
	}
	hdr := 20
	if strings.Contains(dst, "[") {
		hdr = 40
	}
	return uint64(count * (hdr + 8 + payload))
}

// Conn is a google/nftables connection to the namespace, closed when the
// test ends.
func (ns *NS) Conn() *nftables.Conn {
	ns.t.Helper()
	f, err := netns.Open(ns.Path())
	if err != nil {
		ns.t.Fatal(err)
	}
	ns.t.Cleanup(func() { f.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(f.Fd()))
	if err != nil {
		ns.t.Fatal(err)
	}
	return c
}
