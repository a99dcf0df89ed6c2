package collector

import (
	"fmt"
	"path"

	"github.com/ipacct/ipacct_exporter/family"
)

// Filter narrows what a collector reads to the tables and chains an operator
// names, as munin's plugin reads only the chains it is told: a stray tagged
// rule elsewhere then cannot change a bill, and a host with a huge ruleset
// (kube-proxy's) reads only what it accounts with. The zero Filter reads
// everything.
type Filter struct {
	// Tables are globs (path.Match) of "TABLE_FAMILY NAME", such as "ip filter"
	// or "inet *"; empty: every table.
	Tables []string
	// Chains are globs of chain names; empty: every chain.
	Chains []string
	// Managed are the exporter's own tables ("inet ipacct"): read whole,
	// whatever Tables and Chains say, and every counter in them was made
	// at zero by the exporter.
	Managed []string
}

// Check reports a malformed glob.
func (f Filter) Check() error {
	for _, p := range append(append([]string{}, f.Tables...), f.Chains...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// Table tells whether the table is read at all.
func (f Filter) Table(fam family.Table, name string) bool {
	return f.IsManaged(fam, name) || matchAny(f.Tables, string(fam)+" "+name)
}

// Chain tells whether the chain's rules are read; its table is read.
func (f Filter) Chain(fam family.Table, table, chain string) bool {
	return f.IsManaged(fam, table) || matchAny(f.Chains, chain)
}

// IsManaged tells whether the table is one of the exporter's own.
func (f Filter) IsManaged(fam family.Table, table string) bool {
	for _, m := range f.Managed {
		if m == string(fam)+" "+table {
			return true
		}
	}
	return false
}

// matchAny: no pattern matches everything.
func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
