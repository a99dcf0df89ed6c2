package main

import (
	"bytes"
	"fmt"
	"os/exec"

	"github.com/ipacct/ipacct_exporter/bench"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// tool is a command an operator would run instead of a scrape.
type tool struct {
	label string
	args  []string
	want  string // in its output
}

// toolsFor are the tools measured beside a case of kind.
func toolsFor(kind string) []tool {
	fam, table := string(bench.SetFamily), bench.SetTable
	switch kind {
	case "rules":
		return []tool{
			{"nft -j list ruleset", []string{"nft", "-j", "list", "ruleset"}, "=t0_in="},
			{"iptables-nft-save -c", []string{"iptables-nft-save", "-c"}, "=t0_out="},
		}
	case "sharded":
		return []tool{{"nft -j list table", []string{"nft", "-j", "list", "table", fam, table}, `"=tenants_out="`}}
	}
	return []tool{{"nft -j list set", []string{"nft", "-j", "list", "set", fam, table, bench.SetName}, `"=tenants_out="`}}
}

// toolLabels are all tool columns of the table, in order.
var toolLabels = []string{"nft -j list ruleset", "iptables-nft-save -c", "nft -j list set", "nft -j list table"}

// toolProbes are the probes of tools in the namespace at nsPath. Each
// tool runs once first, outside the measurement, to see that it sees the
// case's state.
func toolProbes(nsPath string, tools []tool) ([]*probe, error) {
	var probes []*probe
	for _, t := range tools {
		var out []byte
		err := netns.Do(nsPath, func() error {
			var err error
			out, err = exec.Command(t.args[0], t.args[1:]...).Output()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.label, err)
		}
		if !bytes.Contains(out, []byte(t.want)) {
			return nil, fmt.Errorf("%s: its output lacks %s", t.label, t.want)
		}
		probes = append(probes, &probe{name: t.label, run: func() error {
			return netns.Do(nsPath, func() error {
				// Output to /dev/null: the tool formats it all the same.
				return exec.Command(t.args[0], t.args[1:]...).Run()
			})
		}})
	}
	return probes, nil
}
