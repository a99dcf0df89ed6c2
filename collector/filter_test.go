package collector

import "testing"

func TestFilter(t *testing.T) {
	f := Filter{Tables: []string{"ip filter", "ip6 *"}, Chains: []string{"ACCT*"}, Managed: []string{"inet ipacct"}}
	for _, c := range []struct {
		family, table, chain string
		wantTable, wantChain bool
	}{
		{"ip", "filter", "ACCT4", true, true},
		{"ip", "filter", "INPUT", true, false},
		{"ip", "nat", "ACCT4", false, true},
		{"ip6", "mangle", "ACCT6", true, true},
		{"inet", "ipacct", "in", true, true}, // the managed table, whole
		{"inet", "filter", "ACCT", false, true},
	} {
		if got := f.Table(c.family, c.table); got != c.wantTable {
			t.Errorf("Table(%s %s) = %v", c.family, c.table, got)
		}
		if got := f.Chain(c.family, c.table, c.chain); got != c.wantChain {
			t.Errorf("Chain(%s %s %s) = %v", c.family, c.table, c.chain, got)
		}
	}
	var all Filter
	if !all.Table("bridge", "x") || !all.Chain("bridge", "x", "y") {
		t.Error("the zero Filter must read everything")
	}
	if err := (Filter{Chains: []string{"["}}).Check(); err == nil {
		t.Error("a malformed glob passed")
	}
}
