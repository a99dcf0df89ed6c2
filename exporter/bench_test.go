package exporter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The benchmarks of this file measure what a scrape does after the kernel
// read, on the bench suite's cases (bench/load.go) without a kernel: 20,000
// tagged rules (half inet t<i%100>_in, half ip t<i%100>_out) and a set of
// 100,000 addresses. Run with
//
//	go test -run='^$' -bench=. -benchmem ./exporter/
//
// Gather is the read of the fake backend, the sums and the metric
// families; Scrape adds the text exposition.

// benchBackend returns the same reading on every read.
type benchBackend struct{ reading backends.Reading }

func (b *benchBackend) Read(context.Context) (backends.Reading, error) { return b.reading, nil }

// benchRules is the reading of the suite's n tagged rules.
func benchRules(n int) backends.Reading {
	const tags = 100
	var r backends.Reading
	for i := 0; i < n/2; i++ {
		r.Records = append(r.Records, backends.Record{Tag: fmt.Sprintf("t%d", i%tags), Direction: tag.In, Family: "inet",
			Description: fmt.Sprintf("native rule %d", i), Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
			ID: fmt.Sprintf("inet t c #%x", i), Handle: uint64(i + 1)})
	}
	for i := 0; i < n-n/2; i++ {
		r.Records = append(r.Records, backends.Record{Tag: fmt.Sprintf("t%d", i%tags), Direction: tag.Out, Family: "ip",
			Description: fmt.Sprintf("xt rule %d", i), Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
			ID: fmt.Sprintf("ip filter ACCT #%x", i), Handle: uint64(i + 1)})
	}
	return r
}

// benchSet is the reading of the suite's set of n addresses, in the
// kernel's order (a hash table's: not sorted).
func benchSet(n int) backends.Reading {
	s := backends.AddressSet{Tag: "tenants", Direction: tag.Out, Family: "ipv4", Where: "inet bench set addrs",
		Capacity: 16777216, Elements: make([]backends.AddressCount, 0, n)}
	for i := 0; i < n; i++ {
		s.Elements = append(s.Elements, backends.AddressCount{
			Addr:    netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
		})
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { s.Elements[i], s.Elements[j] = s.Elements[j], s.Elements[i] })
	return backends.Reading{Sets: []backends.AddressSet{s}}
}

var benchCases = []struct {
	name    string
	reading func() backends.Reading
	series  int // the exporter's series, for a check
}{
	{"rules=20000", func() backends.Reading { return benchRules(20000) }, 2 * 100 * 3},
	{"rules=20000,tags=1", func() backends.Reading {
		r := benchRules(20000)
		for i := range r.Records {
			r.Records[i].Tag = "one"
		}
		return r
	}, 2 * 3},
	{"addresses=100000", func() backends.Reading { return benchSet(100000) }, 2 * 100000},
	{"addresses=1000000", func() backends.Reading { return benchSet(1000000) }, 2 * 1000000},
}

func benchExporter(r backends.Reading) *Exporter {
	return New(slog.New(slog.DiscardHandler), 0, Source{Name: "nftables", Backend: &benchBackend{reading: r}})
}

// BenchmarkGather reads the fake backend, sums, and builds the metric
// families, sorted: all of a scrape but the kernel read and the
// exposition.
func BenchmarkGather(b *testing.B) {
	for _, bc := range benchCases {
		g := benchExporter(bc.reading())
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := g.Gather()
				if err != nil {
					b.Fatal(err)
				}
				if n := countSeries(mfs); n < bc.series {
					b.Fatalf("%d series, want at least %d", n, bc.series)
				}
			}
		})
	}
}

// BenchmarkScrape gathers and encodes in the text format, as promhttp does
// for a Prometheus scrape: a whole scrape but for the kernel read, HTTP and
// compression. body-bytes is the size of the answer.
func BenchmarkScrape(b *testing.B) {
	for _, bc := range benchCases {
		g := benchExporter(bc.reading())
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				mfs, err := g.Gather()
				if err != nil {
					b.Fatal(err)
				}
				w := &countingWriter{}
				enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
				size = w.n
			}
			b.ReportMetric(float64(size), "body-bytes")
		})
	}
}

func countSeries(mfs []*dto.MetricFamily) int {
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return io.Discard.Write(p)
}
