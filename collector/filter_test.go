package collector

import (
	"testing"

	"github.com/ipacct/ipacct_exporter/family"
)

func TestFilter(t *testing.T) {
	f := Filter{Tables: []string{"ip filter", "ip6 *"}, Chains: []string{"ACCT*"}, Managed: []string{"inet ipacct"}}
	for _, c := range []struct {
		family               family.Table
		table, chain         string
		wantTable, wantChain bool
	}{
		{family.IP, "filter", "ACCT4", true, true},
		{family.IP, "filter", "INPUT", true, false},
		{family.IP, "nat", "ACCT4", false, true},
		{family.IP6, "mangle", "ACCT6", true, true},
		{family.Inet, "ipacct", "in", true, true}, // the managed table, whole
		{family.Inet, "filter", "ACCT", false, true},
	} {
		if got := f.Table(c.family, c.table); got != c.wantTable {
			t.Errorf("Table(%s %s) = %v", c.family, c.table, got)
		}
		if got := f.Chain(c.family, c.table, c.chain); got != c.wantChain {
			t.Errorf("Chain(%s %s %s) = %v", c.family, c.table, c.chain, got)
		}
	}
	var all Filter
	if !all.Table(family.Bridge, "x") || !all.Chain(family.Bridge, "x", "y") {
		t.Error("the zero Filter must read everything")
	}
	if err := (Filter{Chains: []string{"["}}).Check(); err == nil {
		t.Error("a malformed glob passed")
	}
}
