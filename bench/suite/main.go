// Command suite measures the exporter's read path beside the tools an
// operator would otherwise run on the same kernel state, and prints one
// markdown table. Run it as root from the module:
//
//	go run ./bench/suite                       # 1k, 10k, 20k rules; 10k, 100k addresses
//	go run ./bench/suite -1m                   # also 1M addresses (slow)
//	go run ./bench/suite -rules= -addresses=100k -scrapes-steady=1000
//	go run ./bench/suite -datapath             # also the data path (bench/datapath)
//
// It builds the exporter once, and for each case creates a network
// namespace of its own (ipacct-bench-PID-N), loads the rules or the set
// (bench.LoadRules, bench.LoadSet), starts the real binary with --netns on
// it, and then measures in rounds, each of which runs every probe once, in
// turn: a scrape of /metrics over HTTP, the nftables collector's Read in this
// process, the bare netlink dumps that Read makes (the kernel's floor), and
// the tools (nft -j list ruleset, iptables-nft-save -c, nft -j list set),
// started inside the namespace by setns rather than `ip netns exec`. The
// machine may be shared and noisy, so the table gives medians and ratios
// to the scrape of the same case, measured interleaved in the same run.
//
// It deletes its namespaces and stops its exporters on every exit path,
// SIGINT and SIGTERM included.
//
// The files: flags.go reads the command line; ns.go makes namespaces and
// undoes everything at exit; case.go sets a case up and checks its
// scrapes; probe.go measures the probes in rounds, steady.go the
// exporter's memory; exporter.go runs the binary; tools.go the tools it is
// measured beside; rawdump.go the collector's dumps without decoding;
// environment.go describes the machine; report.go writes the tables;
// datapath.go runs bench/datapath.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/ipacct/ipacct_exporter/bench"
)

func main() {
	cfg := parseFlags()
	handleSignals()
	defer cleanup()
	prepare(&cfg)

	env := environment(cfg)
	start := time.Now()
	results := runCases(cfg)
	var dp []dpRow
	var dpErr error
	if cfg.datapath {
		logf("data path")
		dp, dpErr = runDatapath()
	}
	env = append(env, fmt.Sprintf("load average at the end: %s; the suite took %s", loadavg(), time.Since(start).Round(time.Second)))

	if interrupted.Load() {
		select {} // the signal handler cleans up and exits
	}
	var md bytes.Buffer
	report(&md, cfg, env, results, dp, dpErr)
	os.Stdout.Write(md.Bytes())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, md.Bytes(), 0o644); err != nil {
			fatal("-out: %v", err)
		}
	}
	failed := dpErr != nil
	for _, r := range results {
		failed = failed || r.err != nil
	}
	if failed {
		exit(1)
	}
	exit(0)
}

// prepare checks that the suite can run here, and builds the exporter
// into a temporary directory of the run.
func prepare(cfg *config) {
	if os.Geteuid() != 0 {
		fatal("run as root: the suite creates network namespaces and reads nftables")
	}
	for _, tool := range []string{"ip", "nft", "iptables-nft-restore", "iptables-nft-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatal("needs %s: %v", tool, err)
		}
	}
	var err error
	cfg.tmp, err = os.MkdirTemp("", "ipacct-bench-")
	if err != nil {
		fatal("%v", err)
	}
	atExit(func() { os.RemoveAll(cfg.tmp) })
	cfg.binary = filepath.Join(cfg.tmp, "ipacct_exporter")
	logf("building the exporter")
	if out, err := exec.Command(goTool(), "build", "-o", cfg.binary, "github.com/ipacct/ipacct_exporter").CombinedOutput(); err != nil {
		fatal("go build: %v: %s", err, out)
	}
}

// runCases measures the rule cases, each rule count with each number of
// tags, then the address cases: one set, as an operator's own, and the
// shards the exporter's rules.yaml makes of an entry that size, where
// there are several.
func runCases(cfg config) []*caseResult {
	var results []*caseResult
	for _, n := range cfg.rules {
		for _, tags := range cfg.tags {
			results = append(results, runCase(cfg, "rules", n, tags))
		}
	}
	for _, n := range cfg.addresses {
		if slices.Contains(cfg.layouts, "one") {
			results = append(results, runCase(cfg, "addresses", n, 1))
		}
		if bench.SetShards(n) > 1 && slices.Contains(cfg.layouts, "sharded") {
			results = append(results, runCase(cfg, "sharded", n, 1))
		}
	}
	return results
}

// goTool is the go command: from PATH, else where the Go tarball installs
// it (a root shell's PATH may lack it).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
