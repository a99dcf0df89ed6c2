package exporter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The benchmarks of this file measure what a scrape does after the kernel
// read, on the bench suite's cases (bench/load.go) without a kernel: 20,000
// tagged rules (half inet t<i%100>_in, half ip t<i%100>_out) and a set of
// 100,000 addresses. Run with
//
//	go test -run='^$' -bench=. -benchmem ./exporter/
//
// Gather is the read of the fake collector, the sums and the metric
// families; Scrape adds the text exposition.

// benchBackend returns the same reading on every read.
type benchBackend struct{ reading collector.Reading }

func (b *benchBackend) Read(context.Context) (collector.Reading, error) { return b.reading, nil }

// benchRules is the reading of the suite's n tagged rules.
func benchRules(n int) collector.Reading {
	const tags = 100
	var r collector.Reading
	for i := 0; i < n/2; i++ {
		r.Records = append(r.Records, collector.Record{Tag: fmt.Sprintf("t%d", i%tags), Direction: tag.In, Family: family.Inet,
			Description: fmt.Sprintf("native rule %d", i), Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
			ID: collector.ID(fmt.Sprintf("inet t c #%x", i)), Handle: uint64(i + 1)})
	}
	for i := 0; i < n-n/2; i++ {
		r.Records = append(r.Records, collector.Record{Tag: fmt.Sprintf("t%d", i%tags), Direction: tag.Out, Family: family.IP,
			Description: fmt.Sprintf("xt rule %d", i), Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
			ID: collector.ID(fmt.Sprintf("ip filter ACCT #%x", i)), Handle: uint64(i + 1)})
	}
	return r
}

// benchSet is the reading of the suite's n addresses in shards sets, each
// address in the set its lowest bits number (as bench.SetRuleset lays them
// out), in the kernel's order (a hash table's: not sorted).
func benchSet(n, shards int) collector.Reading {
	var r collector.Reading
	rnd := rand.New(rand.NewPCG(1, 2))
	for k := range shards {
		s := collector.AddressSet{Tag: "tenants", Direction: tag.Out, Family: family.IPv4, Where: fmt.Sprintf("inet bench set addrs.%d", k),
			Handle: uint64(k + 1), Capacity: 16777216, Elements: make([]collector.AddressCount, 0, n/shards+1)}
		for i := k; i < n; i += shards {
			s.Elements = append(s.Elements, collector.AddressCount{
				Addr:    netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
				Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1)),
			})
		}
		rnd.Shuffle(len(s.Elements), func(i, j int) { s.Elements[i], s.Elements[j] = s.Elements[j], s.Elements[i] })
		r.Sets = append(r.Sets, s)
	}
	return r
}

var benchCases = []struct {
	name    string
	reading func() collector.Reading
	series  int // the exporter's series, for a check
}{
	{"rules=20000", func() collector.Reading { return benchRules(20000) }, 2 * 100 * 3},
	{"rules=20000,tags=1", func() collector.Reading {
		r := benchRules(20000)
		for i := range r.Records {
			r.Records[i].Tag = "one"
		}
		return r
	}, 2 * 3},
	{"rules=20000,tags=10000", func() collector.Reading { return benchTags(benchRules(20000), 10000) }, 2 * 10000 * 3},
	{"addresses=100000", func() collector.Reading { return benchSet(100000, 1) }, 2 * 100000},
	{"addresses=1000000,sets=64", func() collector.Reading { return benchSet(1000000, 64) }, 2 * 1000000},
}

// benchTags spreads the rules over n tags, i%n each.
func benchTags(r collector.Reading, n int) collector.Reading {
	for i := range r.Records {
		r.Records[i].Tag = fmt.Sprintf("t%d", i%n)
	}
	return r
}

func benchExporter(r collector.Reading) *Exporter {
	return New(slog.New(slog.DiscardHandler), 0, Collector{Name: "nftables", Collector: &benchBackend{reading: r}})
}

// BenchmarkGather reads the fake collector, sums, and builds the metric
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

// prometheusAccept is the Accept header of a Prometheus 3 scrape with its
// default scrape_protocols: OpenMetrics first.
const prometheusAccept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// BenchmarkHTTP is a whole scrape but for the kernel read, as the binary
// serves it: the handler of main.go over the exporter and a registry,
// answering Prometheus' Accept header, with and without gzip. body-bytes is
// the answer as sent; peak-MiB the most memory the Go runtime held from
// the OS during the benchmark (a proxy for the process's peak RSS),
// retained-MiB the heap live after the last scrape (the tracked state), and
// cpu-ms/op the CPU time of a scrape, GC included.
func BenchmarkHTTP(b *testing.B) {
	for _, bc := range benchCases {
		for _, gz := range []bool{false, true} {
			name := bc.name + "/identity"
			if gz {
				name = bc.name + "/gzip"
			}
			b.Run(name, func(b *testing.B) {
				h := benchHandler(benchExporter(bc.reading()))
				// The first scrape finds every series new: a steady scrape
				// is measured.
				h.ServeHTTP(&discardResponse{header: http.Header{}}, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				runtime.GC()
				peak := watchPeak()
				cpu := cpuTime()
				b.ReportAllocs()
				var size int64
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					req.Header.Set("Accept", prometheusAccept)
					if gz {
						req.Header.Set("Accept-Encoding", "gzip")
					}
					w := &discardResponse{header: http.Header{}}
					h.ServeHTTP(w, req)
					if w.status != 0 && w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
					size = w.n
				}
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(size), "body-bytes")
				b.ReportMetric(peak()/(1<<20), "peak-MiB")
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "retained-MiB")
				runtime.KeepAlive(h)
			})
		}
	}
}

// benchHandler is the /metrics handler of main.go.
func benchHandler(e *Exporter) http.Handler {
	return Handler(e, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
}

// watchPeak samples the memory the Go runtime holds from the OS until the
// returned function is called, which returns the largest sample in bytes.
func watchPeak() func() float64 {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	var peak float64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			peak = max(peak, float64(samples[0].Value.Uint64()-samples[1].Value.Uint64()))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(stop); <-done; return peak }
}

// cpuTime is the CPU time the process has used, user and system, in
// nanoseconds: on a shared machine it says more than the wall clock.
func cpuTime() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// discardResponse is an http.ResponseWriter that counts what is written.
type discardResponse struct {
	header http.Header
	status int
	n      int64
}

func (w *discardResponse) Header() http.Header { return w.header }
func (w *discardResponse) WriteHeader(s int)   { w.status = s }
func (w *discardResponse) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
