package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// loadRules puts n tagged rules into ns: half native nft, half iptables-nft
// (see LoadRules).
func loadRules(b *testing.B, ns *netnstest.NS, n int) {
	if err := LoadRules(RunIn(ns.Path()), n, Tags); err != nil {
		b.Fatal(err)
	}
}

// scrapeOverHTTP measures a scrape of the exporter reading ns through
// promhttp, as Prometheus would make it; each of want must be in every
// answer.
func scrapeOverHTTP(b *testing.B, ns *netnstest.NS, want ...string) {
	e := exporter.New(slog.New(slog.DiscardHandler), 0,
		exporter.Collector{Name: "nftables", Collector: nft.New(nft.Options{NetNS: ns.Path()})})
	srv := httptest.NewServer(exporter.Handler(e, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	defer srv.Close()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				b.Fatalf("scrape lacks %s:\n%.500s", w, body)
			}
		}
	}
}

// collectorRead measures the nftables collector's Read of ns alone, with
// the kernel's dump chunks small (a 4 KiB buffer) and large (the
// collector's); check says what is wrong with a reading.
func collectorRead(b *testing.B, ns *netnstest.NS, name string, check func(collector.Reading) error) {
	for _, size := range []int{4096, nft.DefaultDumpBufferSize} {
		b.Run(fmt.Sprintf("%s/collector-read-buffer=%d", name, size), func(b *testing.B) {
			c := nft.New(nft.Options{NetNS: ns.Path(), DumpBufferSize: size})
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.Read(context.Background())
				if err == nil {
					err = check(r)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// runIn runs a tool inside the namespace without `ip netns exec`, whose
// own cost would blur the comparison.
func runIn(b *testing.B, ns *netnstest.NS, name string, args ...string) {
	err := netns.Do(ns.Path(), func() error {
		return exec.Command(name, args...).Run()
	})
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
}

func BenchmarkScrape(b *testing.B) {
	netnstest.RequireRoot(b, "nft", "iptables-nft-restore", "iptables-nft-save")
	for _, n := range []int{1000, 10000} {
		ns := netnstest.New(b, "192.0.2.1/24")
		loadRules(b, ns, n)

		b.Run(fmt.Sprintf("rules=%d/exporter-http", n), func(b *testing.B) {
			scrapeOverHTTP(b, ns, RuleSeries(n, Tags)...)
		})
		collectorRead(b, ns, fmt.Sprintf("rules=%d", n), func(r collector.Reading) error {
			if len(r.Records) != n {
				return fmt.Errorf("%d records, want %d", len(r.Records), n)
			}
			return nil
		})
		b.Run(fmt.Sprintf("rules=%d/nft-j-list-ruleset", n), func(b *testing.B) {
			for b.Loop() {
				runIn(b, ns, "nft", "-j", "list", "ruleset")
			}
		})
		b.Run(fmt.Sprintf("rules=%d/iptables-nft-save-c", n), func(b *testing.B) {
			for b.Loop() {
				runIn(b, ns, "iptables-nft-save", "-c")
			}
		})
	}
}
