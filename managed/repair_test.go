package managed

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// repairYAML has entry chains of two rules, per-address sets (one sharded)
// and base chains at every hook.
const repairYAML = `
accounting:
  - tag: web4
    local: [192.0.2.1]
    protocol: udp
    ports: [80, 443]
  - tag: gw
    hooks: [forward]
    local: [198.51.100.0/24]
addresses:
  - tag: srv
    networks: [192.0.2.0/24]
    size: 100
  - tag: big
    direction: out
    networks: [203.0.113.0/24]
`

// repair plans and commits rs as the Manager's repair does, and returns
// what it found.
func repair(t *testing.T, ns *netnstest.NS, rs *Ruleset, adopt bool) (Changes, error) {
	t.Helper()
	c := conn(t, ns)
	p, err := observeAndPlan(c, rs, withRules, adopt)
	if err != nil {
		return Changes{}, err
	}
	return p.changes(), commit(c, p)
}

// planned observes the table in the namespace to depth d and returns what
// a plan of rs would change.
func planned(t *testing.T, ns *netnstest.NS, rs *Ruleset, d depth) Changes {
	t.Helper()
	p, err := observeAndPlan(conn(t, ns), rs, d, false)
	if err != nil {
		t.Fatal(err)
	}
	return p.changes()
}

// blocks is an nft listing of one table as a sorted list of its chains and
// sets: a repair makes what was missing again at the end of the table, so
// only the order differs from a table made at once.
func blocks(listing string) []string {
	var list []string
	var cur []string
	for _, line := range strings.Split(listing, "\n") {
		switch {
		case strings.HasPrefix(line, "\tchain "), strings.HasPrefix(line, "\tset "):
			cur = []string{line}
		case line == "\t}":
			list = append(list, strings.Join(append(cur, line), "\n"))
			cur = nil
		case cur != nil && line != "":
			cur = append(cur, line)
		}
	}
	slices.Sort(list)
	return list
}

// TestRepairs damages the managed table in the ways another program can,
// one at a time, and repairs it: each time the table ends as a fresh apply
// makes it, the repair says what it found, and the rest of the ruleset is
// as it was.
func TestRepairs(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rs := mustBuild(t, repairYAML)
	fresh := netnstest.New(t)
	apply(t, fresh, rs)
	want := blocks(fresh.Run("nft", "-s", "list", "table", "inet", "ipacct"))

	entry, set, setChain := rs.Chains[0].Name, rs.Sets[0].Name, "addr_"+rs.Sets[0].Name
	var withRules []string
	for _, wc := range rs.chains() {
		if len(wc.rules) > 0 {
			withRules = append(withRules, wc.name)
		}
	}
	for _, c := range []struct {
		name   string
		damage []string // nft -f input
		// missing, changed and removed: what the repair must report
		missing, changed, removed string
	}{
		{name: "table deleted", damage: []string{"delete table inet ipacct"}, missing: "the table"},
		{name: "flush ruleset", damage: []string{"flush ruleset"}, missing: "the table"},
		{name: "table flushed", damage: []string{"flush table inet ipacct"},
			changed: names(kinded("chain", withRules))},
		{name: "chain deleted", damage: []string{"flush chain inet ipacct input", "flush chain inet ipacct output", "delete chain inet ipacct " + entry},
			missing: "chain " + entry, changed: "chain input, chain output"},
		{name: "set deleted", damage: []string{"flush chain inet ipacct " + setChain, "delete set inet ipacct " + set},
			missing: "set " + set, changed: "chain " + setChain},
		{name: "set made again differently", damage: []string{"flush chain inet ipacct " + setChain, "delete set inet ipacct " + set,
			"add set inet ipacct " + set + " { type ipv4_addr; size 7; flags dynamic; }"},
			changed: "chain " + setChain + ", set " + set},
		{name: "rule added", damage: []string{"add rule inet ipacct " + entry + " counter"}, changed: "chain " + entry},
		{name: "rule in a base chain", damage: []string{"insert rule inet ipacct input drop"}, changed: "chain input"},
		{name: "policy drop", damage: []string{"add chain inet ipacct input { type filter hook input priority filter + 10; policy drop; }"},
			changed: "chain input"},
		{name: "foreign chain, set and counter", damage: []string{"add chain inet ipacct mine", "add rule inet ipacct mine counter",
			"add set inet ipacct myset { type ipv4_addr; }", "add counter inet ipacct mycounter"},
			removed: "chain mine, set myset, object mycounter"},
		{name: "marker deleted", damage: []string{"delete chain inet ipacct " + MarkerChain}, missing: "chain " + MarkerChain},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := netnstest.New(t)
			ns.NFT("table ip fw {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 192.0.2.9 drop\n\t}\n}\n")
			apply(t, ns, rs)
			for _, d := range c.damage {
				ns.NFT(d + "\n")
			}
			// What a flush ruleset removed beside our table is gone for
			// good: compare the rest with what the damage left.
			before := ns.RulesetWithout("ipacct")
			if c.name == "rule added" {
				// One rule of an entry chain: the repair must find it.
				if ch := planned(t, ns, rs, structure); !ch.Empty() {
					t.Errorf("the cheap check sees a rule: %+v", ch)
				}
			}
			ch, err := repair(t, ns, rs, true)
			if err != nil {
				t.Fatal(err)
			}
			missing, changed, removed := ch.describe()
			if missing != c.missing || changed != c.changed || removed != c.removed {
				t.Errorf("repair found missing %q, changed %q, removed %q; want %q, %q, %q", missing, changed, removed, c.missing, c.changed, c.removed)
			}
			if got := blocks(ns.Run("nft", "-s", "list", "table", "inet", "ipacct")); !slices.Equal(got, want) {
				t.Errorf("repaired table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if after := ns.RulesetWithout("ipacct"); after != before {
				t.Errorf("the repair changed other tables:\nbefore\n%s\nafter\n%s", before, after)
			}
			if ch, err := repair(t, ns, rs, false); err != nil || !ch.Empty() {
				t.Errorf("a second repair found %+v, %v", ch, err)
			}
		})
	}
}

// TestRepairMarkerNotAdopted: a table of our name without the marker
// chain is taken as ours only when the caller knows it is the one it
// made.
func TestRepairMarkerNotAdopted(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	rs := mustBuild(t, repairYAML)
	apply(t, ns, rs)
	ns.NFT("delete chain inet ipacct " + MarkerChain + "\n")
	before := ns.Run("nft", "-s", "list", "ruleset")
	if _, err := repair(t, ns, rs, false); !errors.Is(err, ErrNotOurs) {
		t.Errorf("repair without adopt: %v", err)
	}
	if after := ns.Run("nft", "-s", "list", "ruleset"); after != before {
		t.Errorf("the table changed:\n%s", after)
	}
}

// TestPlanMatchesFreshApply: right after an apply, plan finds nothing to
// do, for every kind of rule the exporter writes: the fingerprints of the
// rules read back equal those of the rules built.
func TestPlanMatchesFreshApply(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rsExample := exampleRuleset(t)
	for name, rs := range map[string]*Ruleset{
		"seed": mustBuild(t, netnstest.SeedYAML), "example": rsExample, "match": mustBuild(t, matchYAML),
		"addresses": mustBuild(t, serversYAML), "repair": mustBuild(t, repairYAML),
	} {
		ns := netnstest.New(t)
		apply(t, ns, rs)
		if ch := planned(t, ns, rs, withElements); !ch.Empty() {
			t.Errorf("%s: plan after apply: %+v", name, ch)
		}
		// The tests of plan start from observedFresh: it must be what the
		// kernel shows.
		have, err := observe(conn(t, ns), rs.tableOf(), withElements)
		if err != nil {
			t.Fatal(err)
		}
		if diff := diffObserved(have, observedFresh(rs, withElements)); diff != "" {
			t.Errorf("%s: observedFresh differs from the kernel: %s", name, diff)
		}
	}
}

// TestReloadRemovesForeignSets: a reload deletes the sets another program
// added to the table, of kinds the exporter never makes, without reading
// their elements.
func TestReloadRemovesForeignSets(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	rs := mustBuild(t, repairYAML)
	apply(t, ns, rs)
	ns.NFT("add set inet ipacct iv { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 }; }\n" +
		"add map inet ipacct vm { type ipv4_addr : verdict; elements = { 10.0.0.1 : accept }; }\n" +
		"add set inet ipacct ports { type inet_service; elements = { 22 }; }\n")
	ch := apply(t, ns, rs)
	if !slices.Equal(ch.SetsRemoved, []string{"iv", "ports", "vm"}) || ch.SetsKept != len(rs.Sets) || ch.ElementsRemoved != 0 {
		t.Errorf("reload: %+v", ch)
	}
	if ch := apply(t, ns, rs); !ch.Empty() {
		t.Errorf("a second reload: %+v", ch)
	}
}
