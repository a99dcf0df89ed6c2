package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what the flags ask for, and where the run keeps its files.
type config struct {
	rules, addresses []int
	tags             []int
	layouts          []string // of the address cases: one, sharded
	rounds           int
	steadyScrapes    int
	steadyAddresses  int
	scrapeTimeout    time.Duration
	gzip             bool
	datapath         bool
	out              string
	tmp              string
	binary           string
}

// parseFlags reads the command line into a config, or exits with the
// flag that is wrong.
func parseFlags() config {
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
	cfg := config{rounds: *rounds, steadyScrapes: *steady, scrapeTimeout: *timeout, gzip: !*noGzip,
		datapath: *withDP, out: *outFile, layouts: strings.Split(*layouts, ",")}
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
		cfg.rules, cfg.addresses = sizesOfKinds(*sizesFlag)
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
	return cfg
}

// sizesOfKinds reads -sizes: rules=…/addresses=…, either left out for
// none.
func sizesOfKinds(s string) (rules, addresses []int) {
	for _, part := range strings.Split(s, "/") {
		kind, list, _ := strings.Cut(part, "=")
		sizes, err := parseSizes(list)
		switch {
		case err != nil:
			fatal("-sizes: %v", err)
		case kind == "rules":
			rules = sizes
		case kind == "addresses":
			addresses = sizes
		default:
			fatal("-sizes: %q is not rules=… or addresses=…", part)
		}
	}
	return rules, addresses
}

// parseSizes reads a comma-separated list of sizes such as 1k,20k,1M.
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
