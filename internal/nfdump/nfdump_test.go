package nfdump

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

const testRuleset = `
table inet a {
	counter c1 { }
	set s {
		type ipv4_addr; flags dynamic; counter
		elements = { 10.0.0.1, 10.0.0.2, 10.0.0.3 }
	}
	chain c {
		counter
		counter
		counter
	}
}
table ip b {
	chain c {
		counter
		counter
	}
}
`

// dial opens a socket with a receive buffer of bufSize in ns.
func dial(t *testing.T, ns *netnstest.NS, bufSize int) *Conn {
	f, err := os.Open(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Dial(int(f.Fd()), bufSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testNS is a namespace of the test's with testRuleset in it.
func testNS(t *testing.T) *netnstest.NS {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	ns.NFT(testRuleset)
	return ns
}

// TestDump makes each request of a read on a kernel ruleset, and counts
// the reply messages of each family.
func TestDump(t *testing.T) {
	c := dial(t, testNS(t), 64<<10)
	for _, tc := range []struct {
		name     string
		req      Request
		messages map[uint8]int // by family
		holds    []byte        // in some message's attributes
	}{
		{"tables", Tables(), map[uint8]int{unix.NFPROTO_INET: 1, unix.NFPROTO_IPV4: 1}, []byte("a\x00")},
		{"rules of inet a", Rules(unix.NFPROTO_INET, "a"), map[uint8]int{unix.NFPROTO_INET: 3}, []byte("a\x00")},
		{"rules of family ip", Rules(unix.NFPROTO_IPV4, ""), map[uint8]int{unix.NFPROTO_IPV4: 2}, []byte("b\x00")},
		{"counters", Counters(), map[uint8]int{unix.NFPROTO_INET: 1}, []byte("c1\x00")},
		{"sets", Sets(), map[uint8]int{unix.NFPROTO_INET: 1}, []byte("s\x00")},
		{"elements", Elements(unix.NFPROTO_INET, "a", "s"), nil, []byte{10, 0, 0, 3}},
	} {
		got := map[uint8]int{}
		held := false
		err := c.Dump(tc.req, func(family uint8, attrs []byte) error {
			got[family]++
			held = held || bytes.Contains(attrs, tc.holds)
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.messages == nil && len(got) == 0 || tc.messages != nil && !mapsEqual(got, tc.messages) {
			t.Errorf("%s: messages by family %v, want %v", tc.name, got, tc.messages)
		}
		if !held {
			t.Errorf("%s: no message holds %q", tc.name, tc.holds)
		}
	}
}

func mapsEqual(a, b map[uint8]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDumpErrors(t *testing.T) {
	ns := testNS(t)
	c := dial(t, ns, 64<<10)
	none := func(uint8, []byte) error { return nil }
	if err := c.Dump(Elements(unix.NFPROTO_INET, "a", "gone"), none); !errors.Is(err, unix.ENOENT) {
		t.Errorf("elements of a set that does not exist: %v, want ENOENT", err)
	}

	// A ruleset change between two dumps on one socket: the second's
	// replies are of another generation.
	if err := c.Dump(Tables(), none); err != nil {
		t.Fatal(err)
	}
	ns.NFT("add table ip z")
	if err := c.Dump(Tables(), none); !errors.Is(err, ErrInterrupted) {
		t.Errorf("a dump after the ruleset changed: %v, want ErrInterrupted", err)
	}

	small := dial(t, ns, 64)
	if err := small.Dump(Tables(), none); err == nil || !strings.Contains(err.Error(), "larger than the 64-byte receive buffer") {
		t.Errorf("a buffer smaller than a message: %v", err)
	}

	stop := errors.New("stop")
	if err := dial(t, ns, 64<<10).Dump(Tables(), func(uint8, []byte) error { return stop }); err != stop {
		t.Errorf("fn's error: got %v", err)
	}
}
