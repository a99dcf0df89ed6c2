package collector

import (
	"hash/fnv"
	"testing"
)

// TestID: ID is FNV-1a, so that the state files of version 1, which name
// counters by the text ID hashes, load; HashMore goes on from it.
func TestID(t *testing.T) {
	for _, s := range []string{"", "inet t c #1f", "ip filter ACCT4 -p udp -m comment --comment \"=web4_in=\"", "ünïcödé"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := ID(s), h.Sum64(); got != want {
			t.Errorf("ID(%q) = %x, want FNV-1a's %x", s, got, want)
		}
		if got, want := HashMore(ID("inet t c #"), []byte(s)), ID("inet t c #"+s); got != want {
			t.Errorf("HashMore(ID(prefix), %q) = %x, want ID(prefix+s) = %x", s, got, want)
		}
	}
}
