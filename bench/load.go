// Package bench measures a scrape of the exporter beside the tools an
// operator would otherwise run on the same kernel state. Its go-test
// benchmarks run as root with
//
//	go test -run='^$' -bench=. -benchmem ./bench/
//
// and the whole read-path suite, which prints one table, with
//
//	go run ./bench/suite
//
// Both load their kernel state with the generators of this file. Compare
// within one run: the machine may be shared, so ratios mean more than
// absolute times.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// Tags is how many distinct tags the generated rules share by default, so
// that the exporter sums as it would on a real host.
const Tags = 100

// Runner runs a command inside a namespace with stdin as its standard
// input ("" for none), and returns an error that carries the command's
// output when it fails. The go-test benchmarks and the suite (bench/suite)
// load their kernel state through one, so the generators below serve both.
type Runner func(stdin string, name string, args ...string) error

// RunIn is a Runner for the namespace at path (/run/netns/NAME). The
// command is born in the namespace (see internal/netns.Do); no `ip netns
// exec` runs.
func RunIn(path string) Runner {
	return func(stdin string, name string, args ...string) error {
		return netns.Do(path, func() error {
			cmd := exec.Command(name, args...)
			if stdin != "" {
				cmd.Stdin = strings.NewReader(stdin)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s %s: %v: %.2000s", name, strings.Join(args, " "), err, out)
			}
			return nil
		})
	}
}

// The generated rules sit in chains that no hook calls and no rule jumps
// to: the exporter and the tools read them all the same, and no packet
// walks them, so a scrape's own traffic never pays for them wherever the
// exporter listens (the suite's listens in the host's namespace and reads
// the bench namespace over netlink).

// NativeRules is the nft ruleset of the native half of n rules: table inet
// bench, regular chain c, rule i counting ip saddr 10.x.y.z under tag
// t<i%tags>_in.
func NativeRules(n, tags int) string {
	var s strings.Builder
	s.WriteString("table inet bench {\n\tchain c {\n")
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&s, "\t\tip saddr 10.%d.%d.%d counter comment \"=t%d_in= native rule %d\"\n", i>>16&255, i>>8&255, i&255, i%tags, i)
	}
	s.WriteString("\t}\n}\n")
	return s.String()
}

// XTRules is the iptables-nft-restore input of the other half of n rules:
// table ip filter, user chain BENCH, rule i matching -d 10.x.y.z/32 under
// tag t<i%tags>_out.
func XTRules(n, tags int) string {
	var s strings.Builder
	s.WriteString("*filter\n:BENCH - [0:0]\n")
	for i := 0; i < n-n/2; i++ {
		fmt.Fprintf(&s, "-A BENCH -d 10.%d.%d.%d/32 -m comment --comment \"=t%d_out= xt rule %d\"\n", i>>16&255, i>>8&255, i&255, i%tags, i)
	}
	s.WriteString("COMMIT\n")
	return s.String()
}

// LoadRules puts n tagged rules of tags distinct tags into a namespace:
// half native nft, half iptables-nft, as the performance issue asks.
func LoadRules(run Runner, n, tags int) error {
	if err := run(NativeRules(n, tags), "nft", "-f", "-"); err != nil {
		return err
	}
	return run(XTRules(n, tags), "iptables-nft-restore")
}

// RuleSeries are lines that a scrape of the n rules of LoadRules must
// contain: the rule counts of tag t0 in both halves.
func RuleSeries(n, tags int) []string {
	perTag := func(m int) int { return (m + tags - 1) / tags } // rules i<m with i%tags == 0
	return []string{
		`ipacct_tag_rules{direction="in",table_family="inet",tag="t0"} ` + value(perTag(n/2)),
		`ipacct_tag_rules{direction="out",table_family="ip",tag="t0"} ` + value(perTag(n-n/2)),
	}
}

// value is a sample value as the text exposition writes it: 1e+06 for a
// million.
func value(n int) string { return strconv.FormatFloat(float64(n), 'g', -1, 64) }

// SetTable, SetName and SetFamily name the set of LoadSet; with shards,
// the sets are SetName.0, SetName.1, ….
const (
	SetFamily = "inet"
	SetTable  = "bench"
	SetName   = "addrs"
)

// SetShards is how many sets the exporter's own rules.yaml makes of an
// addresses entry of size n: a power of two of at most 16,384 addresses
// each (see managed/addresses.go).
func SetShards(n int) int {
	k := 1
	for k*16384 < n {
		k *= 2
	}
	return k
}

// SetNames names the sets of LoadSet(…, shards).
func SetNames(shards int) []string {
	if shards == 1 {
		return []string{SetName}
	}
	names := make([]string, shards)
	for i := range names {
		names[i] = fmt.Sprintf("%s.%d", SetName, i)
	}
	return names
}

// SetRuleset is the nft ruleset of per-address sets of n IPv4 addresses
// (10.0.0.0 upwards), each with a counter already counting, tagged
// tenants_out: one set, or shards sets that hold each address in the one
// its lowest bits number, as the exporter's own sets do.
func SetRuleset(n, shards int) string {
	var s strings.Builder
	s.Grow(64 * n)
	s.WriteString("table inet bench {\n")
	for k, name := range SetNames(shards) {
		fmt.Fprintf(&s, "\tset %s {\n\t\ttype ipv4_addr; size 16777216; flags dynamic; counter; comment \"=tenants_out=\";\n\t\telements = {\n", name)
		for i := k; i < n; i += shards {
			fmt.Fprintf(&s, "\t\t\t10.%d.%d.%d counter packets %d bytes %d,\n", i>>16&255, i>>8&255, i&255, i+1, 100*(i+1))
		}
		s.WriteString("\t\t}\n\t}\n")
	}
	s.WriteString("}\n")
	return s.String()
}

// LoadSet puts the sets of SetRuleset(n, shards) into a namespace. The
// ruleset goes through a file in dir rather than stdin: nft reads a large
// one faster.
func LoadSet(run Runner, dir string, n, shards int) error {
	path := filepath.Join(dir, fmt.Sprintf("set-%d-%d.nft", n, shards))
	if err := os.WriteFile(path, []byte(SetRuleset(n, shards)), 0o644); err != nil {
		return err
	}
	defer os.Remove(path)
	return run("", "nft", "-f", path)
}

// SetSeries is the line that a scrape of the set of LoadSet(n) must
// contain, and SetSample the start of each of its n per-address series.
func SetSeries(n int) string {
	return `ipacct_ip_addresses{direction="out",family="ipv4",tag="tenants"} ` + value(n)
}

// SetSample opens each per-address byte series of the set of LoadSet.
const SetSample = `ipacct_ip_bytes_total{direction="out",family="ipv4",ip="10.`
