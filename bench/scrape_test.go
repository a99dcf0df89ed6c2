// Package bench measures a scrape of the exporter beside the tools an
// operator would otherwise run on the same kernel state. Run as root:
//
//	go test -run='^$' -bench=. -benchmem ./bench/
//
// Compare ns/op between the sub-benchmarks of one size: the machine is
// shared, so ratios within one run mean more than absolute times.
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
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipacct/ipacct_exporter/backends/nftables"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// tags is how many distinct tags the rules share, so that the exporter sums
// as it would on a real host.
const tags = 100

// loadRules puts n tagged rules into ns: half native nft, half iptables-nft,
// as the benchmark asks.
func loadRules(b *testing.B, ns *netnstest.NS, n int) {
	var native strings.Builder
	native.WriteString("table inet bench {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n")
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&native, "\t\tip saddr 10.%d.%d.%d counter comment \"=t%d_in= native rule %d\"\n", i>>16&255, i>>8&255, i&255, i%tags, i)
	}
	native.WriteString("\t}\n}\n")
	ns.NFT(native.String())

	var xt strings.Builder
	xt.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for i := 0; i < n-n/2; i++ {
		fmt.Fprintf(&xt, "-A OUTPUT -d 10.%d.%d.%d/32 -m comment --comment \"=t%d_out= xt rule %d\"\n", i>>16&255, i>>8&255, i&255, i%tags, i)
	}
	xt.WriteString("COMMIT\n")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "iptables-nft-restore")
	cmd.Stdin = strings.NewReader(xt.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("iptables-nft-restore: %v: %s", err, out)
	}
}

// scrapeOverHTTP measures a scrape of the exporter reading ns through
// promhttp, as Prometheus would make it; want must be in every answer.
func scrapeOverHTTP(b *testing.B, ns *netnstest.NS, want string) {
	e := exporter.New(slog.New(slog.DiscardHandler), 0,
		exporter.Source{Name: "nftables", Backend: nftables.New(nftables.Options{NetNS: ns.Path()})})
	srv := httptest.NewServer(promhttp.HandlerFor(exporter.Gatherers{e, prometheus.NewRegistry()}, promhttp.HandlerOpts{}))
	defer srv.Close()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			b.Fatalf("scrape lacks %s:\n%.500s", want, body)
		}
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
			scrapeOverHTTP(b, ns, `ipacct_tag_rules{direction="in",family="inet",tag="t0"}`)
		})
		for _, size := range []int{4096, nftables.DefaultDumpBufferSize} {
			b.Run(fmt.Sprintf("rules=%d/backend-read-buffer=%d", n, size), func(b *testing.B) {
				be := nftables.New(nftables.Options{NetNS: ns.Path(), DumpBufferSize: size})
				b.ReportAllocs()
				for b.Loop() {
					r, err := be.Read(context.Background())
					if err != nil || len(r.Records) != n {
						b.Fatalf("%d records, %v", len(r.Records), err)
					}
				}
			})
		}
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
