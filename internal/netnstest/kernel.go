package netnstest

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Counter is a packet and byte count as the kernel reports it.
type Counter struct{ Packets, Bytes uint64 }

// Add sums c and o.
func (c Counter) Add(o Counter) Counter { return Counter{c.Packets + o.Packets, c.Bytes + o.Bytes} }

// NFTCounters sums, per tag token ("=web4_down="), the counters of the
// native nft rules and named counters in the namespace whose comment holds
// it, as `nft -j list ruleset` reports them. It is the kernel's word, read
// by the operator's tool, against which the exporter is checked.
func (ns *NS) NFTCounters() map[string]Counter {
	ns.t.Helper()
	out := ns.Run("nft", "-j", "list", "ruleset")
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string           `json:"comment"`
				Expr    []map[string]any `json:"expr"`
			} `json:"rule"`
			Counter *struct {
				Comment string `json:"comment"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		ns.t.Fatalf("parsing nft -j output: %v", err)
	}
	sums := make(map[string]Counter)
	for _, o := range doc.Nftables {
		switch {
		case o.Rule != nil && o.Rule.Comment != "":
			for _, e := range o.Rule.Expr {
				c, ok := e["counter"].(map[string]any)
				if !ok {
					continue
				}
				p, _ := c["packets"].(float64)
				b, _ := c["bytes"].(float64)
				if tok := tokenOf(o.Rule.Comment); tok != "" {
					sums[tok] = sums[tok].Add(Counter{uint64(p), uint64(b)})
				}
				break
			}
		case o.Counter != nil && o.Counter.Comment != "":
			if tok := tokenOf(o.Counter.Comment); tok != "" {
				sums[tok] = sums[tok].Add(Counter{o.Counter.Packets, o.Counter.Bytes})
			}
		}
	}
	return sums
}

var saveCounters = regexp.MustCompile(`^\[(\d+):(\d+)\] (-A .*)$`)
var saveToken = regexp.MustCompile(`--comment "?(=[^=\s"]+=)`)

// SaveCounters sums, per tag token, the counters of the rules that an
// iptables-save variant (iptables-legacy-save, ip6tables-nft-save, …) run
// with -c prints for the namespace.
func (ns *NS) SaveCounters(tool string) map[string]Counter {
	ns.t.Helper()
	sums := make(map[string]Counter)
	for _, line := range strings.Split(ns.Run(tool, "-c"), "\n") {
		m := saveCounters.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		t := saveToken.FindStringSubmatch(m[3])
		if t == nil {
			continue
		}
		p, _ := strconv.ParseUint(m[1], 10, 64)
		b, _ := strconv.ParseUint(m[2], 10, 64)
		sums[t[1]] = sums[t[1]].Add(Counter{p, b})
	}
	return sums
}

var leadingToken = regexp.MustCompile(`^=[^=\s]+=`)

// tokenOf is the tag token a test comment starts with, or "".
func tokenOf(comment string) string {
	return leadingToken.FindString(comment)
}

// NFTSetCounters reads, per tag token and address ("=rent31_out= 192.0.2.1"),
// the element counters of the sets in the namespace whose comment holds a
// tag token, as `nft -j list ruleset` reports them.
func (ns *NS) NFTSetCounters() map[string]Counter {
	ns.t.Helper()
	out := ns.Run("nft", "-j", "list", "ruleset")
	var doc struct {
		Nftables []struct {
			Set *struct {
				Comment string `json:"comment"`
				// An element with a counter is an object; one without,
				// the bare value.
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		ns.t.Fatalf("parsing nft -j output: %v", err)
	}
	sums := make(map[string]Counter)
	for _, o := range doc.Nftables {
		tok := ""
		if o.Set != nil {
			tok = tokenOf(o.Set.Comment)
		}
		if tok == "" {
			continue
		}
		for _, raw := range o.Set.Elem {
			var e struct {
				Elem struct {
					Val     any `json:"val"`
					Counter *struct {
						Packets uint64 `json:"packets"`
						Bytes   uint64 `json:"bytes"`
					} `json:"counter"`
				} `json:"elem"`
			}
			if json.Unmarshal(raw, &e) != nil {
				continue
			}
			ip, ok := e.Elem.Val.(string)
			if !ok || e.Elem.Counter == nil {
				continue
			}
			k := tok + " " + ip
			sums[k] = sums[k].Add(Counter{e.Elem.Counter.Packets, e.Elem.Counter.Bytes})
		}
	}
	return sums
}
