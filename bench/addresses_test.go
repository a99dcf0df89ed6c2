package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// loadSet puts a per-address set of n IPv4 addresses, each with a counter
// already counting, into ns (see LoadSet).
func loadSet(b *testing.B, ns *netnstest.NS, n int) {
	if err := LoadSet(RunIn(ns.Path()), b.TempDir(), n, 1); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAddresses reads a per-address set of 10k, 100k and 1M addresses:
// the exporter's scrape over HTTP, its collector read alone with the dump
// buffer small and large, and `nft -j list set` on the same set.
func BenchmarkAddresses(b *testing.B) {
	netnstest.RequireRoot(b, "nft")
	sizes := []int{10000, 100000}
	if os.Getenv("IPACCT_BENCH_1M") != "" {
		sizes = append(sizes, 1000000)
	}
	for _, n := range sizes {
		ns := netnstest.New(b)
		loadSet(b, ns, n)
		b.Run(fmt.Sprintf("addresses=%d/exporter-http", n), func(b *testing.B) {
			scrapeOverHTTP(b, ns, SetSeries(n))
		})
		collectorRead(b, ns, fmt.Sprintf("addresses=%d", n), func(r collector.Reading) error {
			if len(r.Sets) != 1 || len(r.Sets[0].Elements) != n {
				return fmt.Errorf("%d sets, want one of %d addresses", len(r.Sets), n)
			}
			return nil
		})
		b.Run(fmt.Sprintf("addresses=%d/nft-j-list-set", n), func(b *testing.B) {
			for b.Loop() {
				runIn(b, ns, "nft", "-j", "list", "set", string(SetFamily), SetTable, SetName)
			}
		})
	}
}
