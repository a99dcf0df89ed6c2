package datapath

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// TestDataPathSmoke runs every case once, small and short, to prove the
// harness works: the lanes come up, the traffic flows, the accounting
// counts it (run fails when it does not) and every namespace goes. It says
// nothing about speed, and asserts none.
func TestDataPathSmoke(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "iptables", "iptables-restore", "iptables-save")
	var log strings.Builder
	var e *env
	res, err := run(Options{Duration: 300 * time.Millisecond, Repeats: 1, Log: &log},
		plan{setSizes: []int{100}, ruleCounts: []int{20}, warmup: 100 * time.Millisecond, onEnv: func(x *env) { e = x }})
	t.Log(log.String())
	if e == nil || len(e.created) != 9 {
		t.Errorf("the run created %v, want 3 namespaces for each of 3 cases", e)
	} else {
		for _, ns := range e.created {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				t.Errorf("namespace %s is left over", ns)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{{Case: caseBaseline}, {Case: caseSets, Addresses: 100}, {Case: caseRules, Addresses: 20}}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d: %+v", len(res), len(want), res)
	}
	for i, r := range res {
		if r.Case != want[i].Case || r.Addresses != want[i].Addresses || r.PacketsPerSecond <= 0 {
			t.Errorf("result %d: %+v, want case %q, %d addresses, some packets", i, r, want[i].Case, want[i].Addresses)
		}
	}
}

// TestDataPathFull is the whole benchmark, as bench/suite runs it, with
// its table; only when IPACCT_BENCH_DATAPATH is set, as it takes minutes.
func TestDataPathFull(t *testing.T) {
	if os.Getenv("IPACCT_BENCH_DATAPATH") == "" {
		t.Skip("set IPACCT_BENCH_DATAPATH=1 to run the data-path benchmark")
	}
	netnstest.RequireRoot(t, "nft", "iptables", "iptables-restore", "iptables-save")
	res, err := Run(Options{Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table(res))
}

// table prints results with their ratio to the baseline.
func table(res []Result) string {
	var b strings.Builder
	base := 0.0
	for _, r := range res {
		if r.Addresses == 0 {
			base = r.PacketsPerSecond
		}
	}
	fmt.Fprintf(&b, "%-28s %9s %12s %8s %7s\n", "case", "addresses", "pps", "ratio", "spread")
	for _, r := range res {
		ratio := 0.0
		if base > 0 {
			ratio = r.PacketsPerSecond / base
		}
		fmt.Fprintf(&b, "%-28s %9d %12.0f %8.3f %6.1f%%\n", r.Case, r.Addresses, r.PacketsPerSecond, ratio, 100*r.Spread)
	}
	return b.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
