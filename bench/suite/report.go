package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ipacct/ipacct_exporter/bench"
)

// report writes the run's markdown: the environment, the read-path table,
// the steady-memory table, the targets of the performance issue, and the
// data path's table.
func report(w io.Writer, cfg config, env []string, results []*caseResult, dp []dpRow, dpErr error) {
	fmt.Fprintf(w, "## Read path\n\n")
	for _, e := range env {
		fmt.Fprintf(w, "- %s\n", e)
	}
	fmt.Fprintln(w)
	readPathTable(w, cfg, results)
	steadyTable(w, results)
	fmt.Fprintf(w, "\n### Targets\n\n")
	targets(w, results)
	if cfg.datapath {
		datapathTable(w, dp, dpErr)
	}
}

// readPathTable is a row of each case's medians, and their ratios.
func readPathTable(w io.Writer, cfg config, results []*caseResult) {
	head := []string{"case", "size", "scrape median (min)", "collector read", "raw dump", "decode share", "scrape / raw dump"}
	for _, t := range toolLabels {
		head = append(head, t+" (÷ scrape)")
	}
	head = append(head, "exporter peak RSS", "answer (gzip)")
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range results {
		row := readPathRow(cfg, r)
		for len(row) < len(head) {
			row = append(row, "") // a failed case
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\nMedians of %d rounds. *collector read*: the nftables collector's Read in the suite's process, one collector read after read as the exporter's (netlink dumps and decode, no HTTP, no exposition); *raw dump*: the same netlink dumps, on as many sockets at once, with nothing decoded (the kernel's floor); *decode share* = 1 − raw dump ÷ collector read; *÷ scrape*: the tool's median over the scrape's (above 1: the scrape is faster). Peak RSS is the exporter's VmHWM after its %d scrapes (one a warm-up).\n",
		cfg.rounds, cfg.rounds+1)
}

func readPathRow(cfg config, r *caseResult) []string {
	row := []string{r.kind, count(r.size)}
	if r.kind == "rules" {
		row[1] += fmt.Sprintf(", %s tags", count(r.tags))
	}
	if r.err != nil {
		return append(row, "failed: "+firstLine(r.err.Error()))
	}
	scrape := r.probes[probeScrape].median()
	read := r.probes[probeRead].median()
	raw := r.probes[probeRaw].median()
	row = append(row,
		fmt.Sprintf("**%s** (%s)", dur(scrape), dur(r.probes[probeScrape].min())),
		dur(read), dur(raw), share(raw, read), ratio(scrape, raw))
	for _, t := range toolLabels {
		if p := r.probes[t]; p != nil {
			row = append(row, fmt.Sprintf("%s (**%s**)", dur(p.median()), ratio(p.median(), scrape)))
		} else {
			row = append(row, "–")
		}
	}
	row = append(row, mib(r.peakRSS), fmt.Sprintf("%s (%s)", size(r.bodyBytes), size(r.wireBytes)))
	if r.rounds != cfg.rounds {
		row[1] += fmt.Sprintf(" (%d rounds)", r.rounds)
	}
	return row
}

// steadyTable is a row of each case that the steady-memory check ran on.
func steadyTable(w io.Writer, results []*caseResult) {
	var steady []*caseResult
	for _, r := range results {
		if r.steady != nil {
			steady = append(steady, r)
		}
	}
	if len(steady) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Steady memory\n\n| case | size | scrapes | took | scrape median | RSS after scrape A | after the last | heap in use after A | after the last | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range steady {
		s := r.steady
		fmt.Fprintf(w, "| %s | %s | %d (A = %d) | %s | %s | %s | %s (%s) | %s | %s (%s) | %s |\n",
			r.kind, count(r.size), s.scrapes, s.first, s.took.Round(time.Second), dur(s.scrapeMedianSample),
			mib(uint64(s.rss1)), mib(uint64(s.rss2)), growth(s.rss1, s.rss2),
			mib(uint64(s.heap1)), mib(uint64(s.heap2)), growth(s.heap1, s.heap2), mib(s.peakRSS))
	}
	fmt.Fprintf(w, "\nRSS and heap are the exporter's own `process_resident_memory_bytes` and `go_memstats_heap_inuse_bytes`, in the answer to that scrape (so measured during it).\n")
}

// datapathTable is the data path's rows, each against the first, the
// baseline without accounting.
func datapathTable(w io.Writer, dp []dpRow, dpErr error) {
	fmt.Fprintf(w, "\n## Data path\n\n")
	if dpErr != nil {
		fmt.Fprintf(w, "Not measured: %v\n", dpErr)
		return
	}
	fmt.Fprintf(w, "| case | addresses | packets/s | spread (max−min)/median | ÷ first row |\n|---|---|---|---|---|\n")
	for _, d := range dp {
		r := "–"
		if len(dp) > 0 && dp[0].PacketsPerSecond > 0 {
			r = fmt.Sprintf("%.2f", d.PacketsPerSecond/dp[0].PacketsPerSecond)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f%% | %s |\n", d.Case, count(d.Addresses), d.PacketsPerSecond, 100*d.Spread, r)
	}
	fmt.Fprintf(w, "\nThe first row is the baseline.\n")
}

// targets checks the targets of the performance issue (issue 18) on what
// was measured: ratios to the tools in the same run, and the exporter's
// peak RSS.
func targets(w io.Writer, results []*caseResult) {
	rules := ruleTargets(w, results)
	addresses := addressTargets(w, results)
	if !rules && !addresses {
		fmt.Fprintf(w, "No case of the targets (20k rules with 100 or 10k tags, 100k or 1M addresses sharded) was measured.\n")
	}
}

// ruleTargets checks the targets of 20k rules, and tells whether any such
// case was measured.
func ruleTargets(w io.Writer, results []*caseResult) (any bool) {
	for _, c := range []struct {
		tags       int
		saveRatio  float64 // the most the scrape may take of iptables-save -c's time
		rss        uint64  // the most peak RSS, 0 for no target
		nftRatio   float64 // of nft -j list ruleset's, 0 for no target
		saveReason string
	}{
		{10000, 0.5, 40 << 20, 0.25, ""},
		{100, 0.35, 0, 0, " (both tables read at once is one way below the single-dump floor)"},
	} {
		r := find(results, "rules", 20000, c.tags)
		if r == nil {
			continue
		}
		any = true
		scrape := r.probes[probeScrape].median()
		save := r.probes["iptables-nft-save -c"].median()
		nft := r.probes["nft -j list ruleset"].median()
		q := float64(scrape) / float64(save)
		fmt.Fprintf(w, "- 20k rules, %s tags: a scrape at most %.2f × `iptables-save -c`%s: %.2f× (%s vs %s): %s. iptables-save reads only the half of the rules in the ip table family: the bare kernel dump of that half takes %s, of all rules %s; the collector read %s.\n",
			count(c.tags), c.saveRatio, c.saveReason, q, dur(scrape), dur(save), met(q <= c.saveRatio),
			dur(r.probes[probeRawIP].median()), dur(r.probes[probeRaw].median()), dur(r.probes[probeRead].median()))
		if c.nftRatio > 0 {
			q := float64(scrape) / float64(nft)
			fmt.Fprintf(w, "- 20k rules (10k of them native nft), %s tags: a scrape at most %.2f × `nft -j list ruleset`: %.2f× (%s vs %s): %s.\n",
				count(c.tags), c.nftRatio, q, dur(scrape), dur(nft), met(q <= c.nftRatio))
		}
		if c.rss > 0 {
			fmt.Fprintf(w, "- 20k rules, %s tags: exporter peak RSS at most %s: %s: %s.\n", count(c.tags), mib(c.rss), mib(r.peakRSS), met(r.peakRSS <= c.rss))
		}
	}
	return any
}

// addressTargets checks the targets of 100k and 1M addresses, and the
// steady memory, and tells whether any such case was measured.
func addressTargets(w io.Writer, results []*caseResult) (any bool) {
	if r := find(results, "sharded", 100000, 0); r != nil {
		any = true
		scrape := r.probes[probeScrape].median()
		fmt.Fprintf(w, "- 100k addresses in %d sets (as rules.yaml makes them): a scrape at most 200 ms: %s: %s; peak RSS %s.\n",
			bench.SetShards(r.size), dur(scrape), met(scrape <= 200*time.Millisecond), mib(r.peakRSS))
	}
	if r := find(results, "sharded", 1000000, 0); r != nil {
		any = true
		scrape := r.probes[probeScrape].median()
		fmt.Fprintf(w, "- 1M addresses in %d sets: a scrape at most 2 s: %s: %s (the collector read alone %s, the raw dump %s); peak RSS at most 300 MiB: %s: %s.\n",
			bench.SetShards(r.size), dur(scrape), met(scrape <= 2*time.Second), dur(r.probes[probeRead].median()), dur(r.probes[probeRaw].median()),
			mib(r.peakRSS), met(r.peakRSS <= 300<<20))
	}
	if r := find(results, "addresses", 1000000, 0); r != nil {
		any = true
		fmt.Fprintf(w, "- 1M addresses in one set: a scrape takes %s, the collector read %s, peak RSS %s.\n",
			dur(r.probes[probeScrape].median()), dur(r.probes[probeRead].median()), mib(r.peakRSS))
	}
	for _, r := range results {
		if s := r.steady; s != nil {
			g := (s.rss2 - s.rss1) / s.rss1
			fmt.Fprintf(w, "- %s %s, steady memory over %d scrapes: RSS %s → %s (%s), heap in use %s → %s (%s): %s.\n",
				count(r.size), r.kind, s.scrapes, mib(uint64(s.rss1)), mib(uint64(s.rss2)), growth(s.rss1, s.rss2),
				mib(uint64(s.heap1)), mib(uint64(s.heap2)), growth(s.heap1, s.heap2), met(g < 0.05))
			any = true
		}
	}
	return any
}

// find is the case of kind and size n (and tags, for rules) that
// succeeded, or nil.
func find(results []*caseResult, kind string, n, tags int) *caseResult {
	for _, r := range results {
		if r.kind == kind && r.size == n && (kind != "rules" || r.tags == tags) && r.err == nil {
			return r
		}
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func share(raw, read time.Duration) string {
	if read <= 0 {
		return "–"
	}
	s := 1 - float64(raw)/float64(read)
	if s < 0 {
		return "~0% (noise)"
	}
	return fmt.Sprintf("%.0f%%", 100*s)
}

func growth(a, b float64) string {
	if a == 0 {
		return "–"
	}
	return fmt.Sprintf("%+.1f%%", 100*(b-a)/a)
}

// size is a byte count in KiB or MiB.
func size(b int) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return mib(uint64(b))
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "\\|")
}
