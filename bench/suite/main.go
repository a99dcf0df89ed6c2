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
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/bench"
	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// prometheusAccept is the Accept header of a Prometheus 3 scrape with its
// default scrape_protocols; the exporter answers with the text format.
const prometheusAccept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

type config struct {
	rules, addresses []int
	tags             []int
	rounds           int
	steadyScrapes    int
	steadyAddresses  int
	scrapeTimeout    time.Duration
	gzip             bool
	tmp              string
	binary           string
}

func main() {
	var (
		rulesFlag = flag.String("rules", "1k,10k,20k", "tagged rule counts to measure, half native nft and half iptables-nft (k and M suffixes); empty for none")
		tagsFlag  = flag.String("tags", "100", "distinct tags over the rules of each rule case; several measure each rule count with each")
		addrsFlag = flag.String("addresses", "10k,100k", "per-address set sizes to measure; empty for none")
		sizesFlag = flag.String("sizes", "", "both lists at once, e.g. rules=1k,20k/addresses=100k (a kind left out is not measured)")
		oneM      = flag.Bool("1m", false, "also measure a set of 1,000,000 addresses (loading and each dump take long)")
		rounds    = flag.Int("scrapes", 7, "measurement rounds per case: each scrapes once and runs each other probe once; medians are over these")
		steady    = flag.Int("scrapes-steady", 1000, "scrapes of the steady-memory check, compared after scrape 100 and the last (0: skip)")
		steadyAt  = flag.String("steady-addresses", "10k", "the address case that the steady-memory check runs on (100k: about 1,000 × its scrape time, some 20 minutes now)")
		timeout   = flag.Duration("scrape-timeout", 0, "the exporter's --scrape.timeout (its default is 10s; 0, no limit, lets the large cases finish)")
		noGzip    = flag.Bool("no-gzip", false, "scrape without Accept-Encoding: gzip (Prometheus asks for gzip)")
		withDP    = flag.Bool("datapath", false, "also run the data path (package bench/datapath) and print its table")
		outFile   = flag.String("out", "", "also write the tables, as markdown, to this file")
		layouts   = flag.String("layouts", "one,sharded", "address set layouts: one (a single set, as an operator's own) and sharded (as rules.yaml makes them)")
	)
	flag.Parse()
	handleSignals()
	defer cleanup()

	cfg := config{rounds: *rounds, steadyScrapes: *steady, scrapeTimeout: *timeout, gzip: !*noGzip}
	var err error
	if cfg.rules, err = parseSizes(*rulesFlag); err != nil {
		fatal("-rules: %v", err)
	}
	if cfg.tags, err = parseSizes(*tagsFlag); err != nil || len(cfg.tags) == 0 {
		fatal("-tags: want at least one count: %v", err)
	}
	if cfg.addresses, err = parseSizes(*addrsFlag); err != nil {
		fatal("-addresses: %v", err)
	}
	if *sizesFlag != "" {
		cfg.rules, cfg.addresses = nil, nil
		for _, part := range strings.Split(*sizesFlag, "/") {
			kind, list, _ := strings.Cut(part, "=")
			sizes, err := parseSizes(list)
			switch {
			case err != nil:
				fatal("-sizes: %v", err)
			case kind == "rules":
				cfg.rules = sizes
			case kind == "addresses":
				cfg.addresses = sizes
			default:
				fatal("-sizes: %q is not rules=… or addresses=…", part)
			}
		}
	}
	if *oneM && !slices.Contains(cfg.addresses, 1000000) {
		cfg.addresses = append(cfg.addresses, 1000000)
	}
	if s, err := parseSizes(*steadyAt); err != nil || len(s) != 1 {
		fatal("-steady-addresses: want one size: %v", err)
	} else {
		cfg.steadyAddresses = s[0]
	}
	if cfg.rounds < 1 {
		fatal("-scrapes must be at least 1")
	}

	if os.Geteuid() != 0 {
		fatal("run as root: the suite creates network namespaces and reads nftables")
	}
	for _, tool := range []string{"ip", "nft", "iptables-nft-restore", "iptables-nft-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatal("needs %s: %v", tool, err)
		}
	}

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

	env := environment(cfg)
	start := time.Now()
	var results []*caseResult
	for _, n := range cfg.rules {
		for _, tags := range cfg.tags {
			results = append(results, runCase(cfg, "rules", n, tags))
		}
	}
	for _, n := range cfg.addresses {
		// One set, as an operator's own; and the shards the exporter's
		// rules.yaml makes of an entry that size, where there are several.
		if slices.Contains(strings.Split(*layouts, ","), "one") {
			results = append(results, runCase(cfg, "addresses", n, 1))
		}
		if bench.SetShards(n) > 1 && slices.Contains(strings.Split(*layouts, ","), "sharded") {
			results = append(results, runCase(cfg, "sharded", n, 1))
		}
	}
	var dp []dpRow
	var dpErr error
	if *withDP {
		logf("data path")
		dp, dpErr = runDatapath()
	}
	env = append(env, fmt.Sprintf("load average at the end: %s; the suite took %s", loadavg(), time.Since(start).Round(time.Second)))

	if interrupted.Load() {
		select {} // the signal handler cleans up and exits
	}
	var md bytes.Buffer
	report(&md, cfg, env, results, *withDP, dp, dpErr)
	os.Stdout.Write(md.Bytes())
	if *outFile != "" {
		if err := os.WriteFile(*outFile, md.Bytes(), 0o644); err != nil {
			fatal("-out: %v", err)
		}
	}
	failed := false
	for _, r := range results {
		failed = failed || r.err != nil
	}
	if failed || dpErr != nil {
		exit(1)
	}
	exit(0)
}

// goTool is the go command: from PATH, else where the Go tarball installs
// it (a root shell's PATH may lack it).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mult, f = 1000000, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive size", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// probe is one thing measured in each round.
type probe struct {
	name string
	run  func() error
	// samples are the durations of the measured runs.
	samples []time.Duration
}

func (p *probe) median() time.Duration {
	s := slices.Clone(p.samples)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (p *probe) min() time.Duration { return slices.Min(p.samples) }

// caseResult is what one case measured.
type caseResult struct {
	kind   string // rules, addresses or sharded
	size   int
	tags   int // of a rules case
	probes map[string]*probe
	tools  []string // names of the tool probes, in table order
	// peakRSS and rss are the exporter's VmHWM and VmRSS after the
	// measured scrapes, in bytes; bodyBytes the size of one answer,
	// uncompressed, and wireBytes as sent.
	peakRSS, rss         uint64
	bodyBytes, wireBytes int
	load                 time.Duration
	rounds               int // measured, after the warm-up
	steady               *steadyResult
	err                  error
}

type steadyResult struct {
	scrapes            int
	first              int // the scrape of the first reading
	took               time.Duration
	rss1, rss2         float64 // process_resident_memory_bytes
	heap1, heap2       float64 // go_memstats_heap_inuse_bytes
	peakRSS            uint64
	scrapeMedianSample time.Duration
}

// Probe names that are not tools.
const (
	probeScrape = "scrape"
	probeRead   = "collector read"
	probeRaw    = "raw dump"
	// probeRawIP is the bare dump of the ip family's rules alone, which
	// is all that iptables-save reads: the floor of its time.
	probeRawIP = "raw dump, ip family rules"
)

// tool is a command an operator would run instead of a scrape.
type tool struct {
	label string
	args  []string
	want  string // in its output
}

func toolsFor(kind string) []tool {
	if kind == "rules" {
		return []tool{
			{"nft -j list ruleset", []string{"nft", "-j", "list", "ruleset"}, "=t0_in="},
			{"iptables-nft-save -c", []string{"iptables-nft-save", "-c"}, "=t0_out="},
		}
	}
	if kind == "sharded" {
		return []tool{{"nft -j list table", []string{"nft", "-j", "list", "table", bench.SetFamily, bench.SetTable}, `"=tenants_out="`}}
	}
	return []tool{{"nft -j list set", []string{"nft", "-j", "list", "set", bench.SetFamily, bench.SetTable, bench.SetName}, `"=tenants_out="`}}
}

// toolLabels are all tool columns of the table, in order.
var toolLabels = []string{"nft -j list ruleset", "iptables-nft-save -c", "nft -j list set", "nft -j list table"}

func runCase(cfg config, kind string, n, tags int) *caseResult {
	r := &caseResult{kind: kind, size: n, tags: tags, probes: map[string]*probe{}}
	logf("%s: setting up", r.name())
	if err := measureCase(cfg, r); err != nil {
		logf("%s: %v", r.name(), err)
		r.err = err
	}
	return r
}

// name names the case in the log.
func (r *caseResult) name() string {
	if r.kind == "rules" {
		return fmt.Sprintf("rules=%d,tags=%d", r.size, r.tags)
	}
	return fmt.Sprintf("%s=%d", r.kind, r.size)
}

func measureCase(cfg config, r *caseResult) error {
	ns, err := newNamespace()
	if err != nil {
		return err
	}
	defer ns.Close()
	run := bench.RunIn(ns.Path())
	t0 := time.Now()
	var wants []string
	var perAddress int
	var elems []setRef
	// The tables whose rules the collector dumps, one dump each.
	tables := []setRef{{unix.NFPROTO_INET, bench.SetTable, ""}}
	collectors := []string{"--collector.nftables", "--collector.iptables"}
	shards := 1
	switch r.kind {
	case "rules":
		err = bench.LoadRules(run, r.size, r.tags)
		wants = bench.RuleSeries(r.size, r.tags)
		tables = append(tables, setRef{unix.NFPROTO_IPV4, "filter", ""})
	default:
		if r.kind == "sharded" {
			shards = bench.SetShards(r.size)
		}
		err = bench.LoadSet(run, cfg.tmp, r.size, shards)
		wants = []string{bench.SetSeries(r.size)}
		perAddress = r.size
		for _, name := range bench.SetNames(shards) {
			elems = append(elems, setRef{unix.NFPROTO_INET, bench.SetTable, name})
		}
		collectors = []string{"--collector.nftables", "--no-collector.iptables"}
	}
	if err != nil {
		return fmt.Errorf("loading: %w", err)
	}
	r.load = time.Since(t0)
	logf("%s: loaded in %s", r.name(), r.load.Round(time.Millisecond))
	if r.kind != "rules" {
		// The kernel grows a large set's hash table in the background
		// after the load; a dump during a resize misses and repeats
		// elements. Measure once it has settled.
		if err := settle(ns.Path(), r.size, shards); err != nil {
			return err
		}
	}

	ex, err := startExporter(cfg, ns, collectors)
	if err != nil {
		return err
	}
	defer ex.stop()

	check := func(body []byte) error {
		text, err := ex.decode(body)
		if err != nil {
			return err
		}
		r.bodyBytes, r.wireBytes = len(text), len(body)
		for _, w := range wants {
			if !bytes.Contains(text, []byte(w)) {
				// Say what the series is instead, if it is there.
				series, _, _ := strings.Cut(w, "}")
				var instead []string
				for line := range bytes.Lines(text) {
					if bytes.HasPrefix(line, []byte(series)) {
						instead = append(instead, strings.TrimSpace(string(line)))
					}
				}
				return fmt.Errorf("the scrape lacks %s; it has %q (answer of %d bytes)\nexporter log:\n%.2000s", w, instead, len(text), ex.logs.String())
			}
		}
		if perAddress > 0 {
			if got := bytes.Count(text, []byte("\n"+bench.SetSample)); got != perAddress {
				return fmt.Errorf("the scrape has %d per-address byte series, want %d", got, perAddress)
			}
		}
		return nil
	}
	var lastBody []byte
	probes := []*probe{
		{name: probeScrape, run: func() error {
			body, err := ex.scrape()
			lastBody = body
			return err
		}},
		{name: probeRead, run: func() error {
			rd, err := nft.New(nft.Options{NetNS: ns.Path()}).Read(context.Background())
			switch {
			case err != nil:
				return err
			case r.kind == "rules" && len(rd.Records) != r.size:
				return fmt.Errorf("collector read %d records, want %d", len(rd.Records), r.size)
			case r.kind != "rules" && (len(rd.Sets) != shards || elements(rd.Sets) != r.size):
				return fmt.Errorf("collector read %d sets of %d addresses, want %d of %d", len(rd.Sets), elements(rd.Sets), shards, r.size)
			}
			return nil
		}},
		{name: probeRaw, run: func() error {
			_, err := rawDump(ns.Path(), nft.DefaultDumpBufferSize, tables, elems)
			return err
		}},
	}
	if r.kind == "rules" {
		probes = append(probes, &probe{name: probeRawIP, run: func() error {
			_, err := rawRuleDump(ns.Path(), nft.DefaultDumpBufferSize, unix.NFPROTO_IPV4)
			return err
		}})
	}
	for _, t := range toolsFor(r.kind) {
		r.tools = append(r.tools, t.label)
		probes = append(probes, &probe{name: t.label, run: func() error {
			return netns.Do(ns.Path(), func() error {
				// Output to /dev/null: the tool formats it all the same.
				return exec.Command(t.args[0], t.args[1:]...).Run()
			})
		}})
		// Once, outside the measurement: does the tool see the state?
		var out []byte
		err := netns.Do(ns.Path(), func() error {
			var err error
			out, err = exec.Command(t.args[0], t.args[1:]...).Output()
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", t.label, err)
		}
		if !bytes.Contains(out, []byte(t.want)) {
			return fmt.Errorf("%s: its output lacks %s", t.label, t.want)
		}
	}

	// A warm-up round, not measured, that also checks the scrape.
	for _, p := range probes {
		if err := p.run(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	if err := check(lastBody); err != nil {
		return err
	}
	scrapes := 1
	r.rounds = cfg.rounds
	if r.size >= 1000000 {
		// Each probe takes tens of seconds to minutes there.
		r.rounds = min(r.rounds, 3)
	}
	for round := 0; round < r.rounds; round++ {
		// Each round starts at another probe, so that none always runs
		// right after the same other.
		for i := range probes {
			p := probes[(round+i)%len(probes)]
			t := time.Now()
			err := p.run()
			d := time.Since(t)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.samples = append(p.samples, d)
			if p.name == probeScrape {
				scrapes++
				if err := check(lastBody); err != nil {
					return err
				}
			}
		}
		logf("%s: round %d/%d: scrape %s", r.name(), round+1, r.rounds, probes[0].samples[len(probes[0].samples)-1].Round(time.Millisecond))
	}
	for _, p := range probes {
		r.probes[p.name] = p
	}
	r.peakRSS, r.rss, err = procMemory(ex.cmd.Process.Pid)
	if err != nil {
		return err
	}

	// The steady check runs on the layout the exporter's own rules make.
	layout := r.kind == "sharded" || r.kind == "addresses" && bench.SetShards(r.size) == 1
	if layout && r.size == cfg.steadyAddresses && cfg.steadyScrapes > 0 {
		s, err := steadyState(ex, scrapes, cfg.steadyScrapes, check)
		if err != nil {
			return fmt.Errorf("steady state: %w", err)
		}
		r.steady = s
	}
	return nil
}

// settle waits until two collector reads in a row see the n elements of
// the bench set, for at most a minute or ten reads, whichever is longer.
func settle(nsPath string, n, shards int) error {
	start := time.Now()
	deadline := start.Add(time.Minute)
	good := 0
	for {
		t := time.Now()
		rd, err := nft.New(nft.Options{NetNS: nsPath}).Read(context.Background())
		if d := t.Add(10 * time.Since(t)); d.After(deadline) {
			deadline = d
		}
		got := -1
		if err == nil && len(rd.Sets) == shards {
			got = elements(rd.Sets)
		}
		if got == n {
			good++
		} else {
			good = 0
		}
		if good == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the set did not settle at %d elements: the last read saw %d (%v)", n, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// steadyState scrapes until scrape total, and compares the exporter's own
// memory metrics after scrape 100 (or half the total, when smaller) with
// those after the last.
func steadyState(ex *exporterProc, done, total int, check func([]byte) error) (*steadyResult, error) {
	s := &steadyResult{scrapes: total, first: min(100, total/2)}
	if s.first <= done {
		s.first = done + 1
	}
	if s.first >= total {
		return nil, fmt.Errorf("-scrapes-steady %d is too few after %d scrapes", total, done)
	}
	logf("steady state: scrapes %d to %d", done+1, total)
	start := time.Now()
	var durations []time.Duration
	for i := done + 1; i <= total; i++ {
		t := time.Now()
		body, err := ex.scrape()
		durations = append(durations, time.Since(t))
		if err != nil {
			return nil, fmt.Errorf("scrape %d: %w", i, err)
		}
		if i%100 == 0 && i != s.first && i != total {
			logf("steady state: scrape %d/%d: %s", i, total, durations[len(durations)-1].Round(time.Millisecond))
		}
		if i != s.first && i != total {
			continue
		}
		if err := check(body); err != nil {
			return nil, err
		}
		text, _ := ex.decode(body)
		rss, err1 := metricValue(text, "process_resident_memory_bytes")
		heap, err2 := metricValue(text, "go_memstats_heap_inuse_bytes")
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if i == s.first {
			s.rss1, s.heap1 = rss, heap
		} else {
			s.rss2, s.heap2 = rss, heap
		}
		logf("steady state: after scrape %d: RSS %s, heap in use %s", i, mib(uint64(rss)), mib(uint64(heap)))
	}
	s.took = time.Since(start)
	s.scrapeMedianSample = (&probe{samples: durations}).median()
	var err error
	s.peakRSS, _, err = procMemory(ex.cmd.Process.Pid)
	return s, err
}

// metricValue is the value of an unlabelled series in a text exposition.
func metricValue(text []byte, name string) (float64, error) {
	for line := range bytes.Lines(text) {
		if rest, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
		}
	}
	return 0, fmt.Errorf("the scrape has no %s", name)
}

// procMemory reads a process's VmHWM (peak resident set) and VmRSS, in
// bytes.
func procMemory(pid int) (peak, rss uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmHWM":
			peak = n << 10
		case "VmRSS":
			rss = n << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return peak, rss, nil
}

// exporterProc is a running exporter binary.
type exporterProc struct {
	cmd    *exec.Cmd
	url    string
	client *http.Client
	gzip   bool
	logs   *syncBuffer
	stop   func()
}

func startExporter(cfg config, ns *namespace, collectors []string) (*exporterProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"--netns", ns.Name, "--web.listen-address", addr,
		"--scrape.timeout", cfg.scrapeTimeout.String(), "--log.level", "warn"}, collectors...)
	ex := &exporterProc{
		cmd:  exec.Command(cfg.binary, args...),
		url:  "http://" + addr,
		gzip: cfg.gzip,
		logs: &syncBuffer{},
		// Compression, if any, is asked for by hand, so that the client
		// leaves the body as sent and a scrape's time does not include
		// its decompression.
		client: &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{DisableCompression: true}},
	}
	ex.cmd.Stdout, ex.cmd.Stderr = ex.logs, ex.logs
	if err := ex.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the exporter: %w", err)
	}
	ex.stop = atExit(func() {
		_ = ex.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = ex.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = ex.cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The landing page answers once the server listens, without the
		// scrape that /metrics would make.
		resp, err := http.Get(ex.url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ex, nil
			}
		}
		if time.Now().After(deadline) {
			ex.stop()
			return nil, fmt.Errorf("the exporter did not answer on %s: %v\n%s", ex.url, err, ex.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches /metrics as Prometheus does and returns the body as sent.
func (ex *exporterProc) scrape() ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, ex.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", prometheusAccept)
	if ex.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := ex.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s: %.500s\nexporter log:\n%s", resp.Status, body, ex.logs.String())
	}
	return body, nil
}

// decode undoes the gzip of a body, if it has any.
func (ex *exporterProc) decode(body []byte) ([]byte, error) {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // enough to say what went wrong
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// environment describes the run, for the head of the report.
func environment(cfg config) []string {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	version := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(out))
	}
	env := []string{
		fmt.Sprintf("%s, kernel %s, %d CPUs, %s", time.Now().Format(time.DateTime), unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), runtime.Version()),
		fmt.Sprintf("%s; %s", version("nft", "--version"), version("iptables-nft-save", "--version")),
	}
	save, _ := filepath.EvalSymlinks(mustLookPath("iptables-save"))
	nftSave, _ := filepath.EvalSymlinks(mustLookPath("iptables-nft-save"))
	if save != "" && save == nftSave {
		env = append(env, fmt.Sprintf("`iptables-save` resolves to %s, the binary `iptables-nft-save` runs: the iptables-nft-save column is `iptables-save -c` too", save))
	} else {
		env = append(env, fmt.Sprintf("`iptables-save` is %q here, not iptables-nft-save (%q): the table shows iptables-nft-save", save, nftSave))
	}
	env = append(env,
		fmt.Sprintf("%d measured rounds per case after one warm-up, interleaved; scrapes over HTTP with gzip=%v; exporter --scrape.timeout=%s", cfg.rounds, cfg.gzip, cfg.scrapeTimeout),
		"what a scrape measures: the exporter's binary listens on 127.0.0.1 in the host's namespace and reads the case's namespace over netlink; the rules there sit in chains that no hook calls and no rule jumps to, so no packet, the scrapes' included, walks them: the scrape pays for reading them, as the tools do, and for nothing else",
		fmt.Sprintf("load average at the start: %s", loadavg()))
	return env
}

func mustLookPath(name string) string {
	p, _ := exec.LookPath(name)
	return p
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// elements counts the addresses of all sets.
func elements(sets []collector.AddressSet) int {
	n := 0
	for _, s := range sets {
		n += len(s.Elements)
	}
	return n
}
