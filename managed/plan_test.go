package managed

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

// observedFresh is what observe reads, to depth d, right after rs was
// applied to an empty namespace. TestPlanMatchesFreshApply checks it
// against the kernel.
func observedFresh(rs *Ruleset, d depth) *observed {
	table := rs.tableOf()
	prio := nftables.ChainPriority(rs.Priority)
	o := &observed{chains: map[string]*observedChain{}, sets: map[string]*nftables.Set{}, depth: d}
	maps := 0
	for _, wc := range rs.chains() {
		oc := &observedChain{chain: wc.chain(table, prio)}
		if d >= withRules {
			oc.rules = wc.fingerprints()
		}
		o.chains[wc.name] = oc
		for _, r := range wc.rules {
			if r.GotoMap != nil {
				name := fmt.Sprintf("__map%d", maps)
				o.sets[name] = &nftables.Set{Table: table, Name: name, Anonymous: true, Constant: true, IsMap: true}
				maps++
			}
		}
	}
	if d >= withElements {
		o.elements = map[string][][]byte{}
	}
	for _, s := range rs.Sets {
		o.sets[s.Name] = s.nftSet(table)
	}
	return o
}

// diffObserved says how got differs from want in what plan compares: the
// chains' names, kinds and rules, the sets' names and definitions (the
// anonymous ones by number) and the elements.
func diffObserved(got, want *observed) string {
	var diff []string
	if g, w := sortedKeys(got.chains), sortedKeys(want.chains); !slices.Equal(g, w) {
		return fmt.Sprintf("chains %q, want %q", g, w)
	}
	for name, w := range want.chains {
		g := got.chains[name]
		if !slices.Equal(g.rules, w.rules) {
			diff = append(diff, "rules of chain "+name)
		}
		if chainKind(g.chain) != chainKind(w.chain) {
			diff = append(diff, fmt.Sprintf("chain %s is %s, want %s", name, chainKind(g.chain), chainKind(w.chain)))
		}
	}
	named := func(o *observed) (names []string, anonymous int) {
		for name, s := range o.sets {
			if s.Anonymous {
				anonymous++
			} else {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return names, anonymous
	}
	gNames, gAnon := named(got)
	wNames, wAnon := named(want)
	if !slices.Equal(gNames, wNames) || gAnon != wAnon {
		return fmt.Sprintf("sets %q and %d anonymous, want %q and %d", gNames, gAnon, wNames, wAnon)
	}
	for _, name := range wNames {
		if g, w := got.sets[name], want.sets[name]; g.KeyType.Name != w.KeyType.Name || g.Size != w.Size || g.Dynamic != w.Dynamic || g.Timeout != w.Timeout {
			diff = append(diff, "set "+name)
		}
		if len(got.elements[name]) != len(want.elements[name]) {
			diff = append(diff, "elements of set "+name)
		}
	}
	return strings.Join(diff, ", ")
}

// chainKind is "regular", or a base chain's type, hook, priority and policy.
func chainKind(c *nftables.Chain) string {
	if c.Hooknum == nil || c.Priority == nil || c.Policy == nil {
		return "regular"
	}
	return fmt.Sprintf("%s hook %d priority %d policy %d", c.Type, *c.Hooknum, *c.Priority, *c.Policy)
}

// steps lists what the plan does to each chain and set that it does not
// keep, as "rewrite chain input", and what it deletes, as "delete set x".
func (p *tablePlan) steps() []string {
	words := map[action]string{add: "add", rewrite: "rewrite", recreate: "recreate"}
	var list []string
	if p.create {
		list = append(list, "add table")
	}
	for _, st := range p.sets {
		if st.action != keep {
			list = append(list, words[st.action]+" set "+st.want.Name)
		}
		if len(st.strays) > 0 {
			list = append(list, fmt.Sprintf("drop %d from set %s", len(st.strays), st.want.Name))
		}
	}
	for _, cs := range p.chains {
		if cs.action != keep {
			list = append(list, words[cs.action]+" chain "+cs.want.name)
		}
	}
	for _, c := range p.staleChains {
		list = append(list, "delete chain "+c.Name)
	}
	for _, s := range p.staleSets {
		list = append(list, "delete set "+s.Name)
	}
	for _, o := range p.objects {
		list = append(list, "delete object "+o.Name)
	}
	for _, f := range p.flowtables {
		list = append(list, "delete flowtable "+f.Name)
	}
	return list
}

// kept lists the chains and sets the plan leaves alone: their counters
// carry over.
func (p *tablePlan) kept() []string {
	var list []string
	for _, cs := range p.chains {
		if cs.action == keep {
			list = append(list, "chain "+cs.want.name)
		}
	}
	for _, st := range p.sets {
		if st.action == keep {
			list = append(list, "set "+st.want.Name)
		}
	}
	return list
}

// TestPlan: what plan makes of each state the table can be found in, after
// a start, a reload, and another program's change; without a kernel. Each
// case damages what a fresh apply of repairYAML leaves, plans rs (by
// default repairYAML's) against it, and compares the steps, the log's
// description and what is kept, counters and all.
func TestPlan(t *testing.T) {
	rs := mustBuild(t, repairYAML)
	entry, set, setChain := rs.Chains[0].Name, rs.Sets[0].Name, "addr_"+rs.Sets[0].Name
	var withRulesChains, entries, all []string
	for _, wc := range rs.chains() {
		all = append(all, "chain "+wc.name)
		if len(wc.rules) > 0 {
			withRulesChains = append(withRulesChains, wc.name)
		}
	}
	for _, c := range rs.Chains {
		entries = append(entries, c.Name)
	}
	var setNames []string
	for _, s := range rs.Sets {
		setNames = append(setNames, s.Name)
	}
	allKept := slices.Concat(all, kinded("set", setNames))
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
	}
	// A reload that changes the ports of web4 and the networks of srv.
	changed := mustBuild(t, strings.Replace(strings.Replace(repairYAML, "ports: [80, 443]", "ports: [8080]", 1),
		"networks: [192.0.2.0/24]", "networks: [192.0.2.0/25]", 1))
	newIn, newOut := changed.Chains[0].Name, changed.Chains[1].Name
	if changed.Sets[0].Name != set {
		t.Fatalf("the reload renamed set %s: a set's name follows its definition, not its networks", set)
	}
	// The address base chains are named after their networks: swapped.
	var oldBase, newBase []string
	for i := range rs.AddrBase {
		oldBase, newBase = append(oldBase, rs.AddrBase[i].Name), append(newBase, changed.AddrBase[i].Name)
	}
	reloadRemoved := sorted(append([]string{entries[0], entries[1]}, oldBase...))
	inSrv := netip.MustParseAddr("192.0.2.9").AsSlice()    // in both /24 and /25
	outSrv := netip.MustParseAddr("192.0.2.200").AsSlice() // in the /24 only

	for _, c := range []struct {
		name   string
		rs     *Ruleset
		none   bool // no table
		damage func(o *observed)
		// What observe read: the rules (a repair) unless cheap (the
		// structure) or elements (also the sets' addresses: a reload).
		cheap, elements bool
		adopt           bool
		// steps is what the plan does (see steps); missing, changed and
		// removed are its description for the log; kept what it leaves
		// alone.
		steps                     []string
		missing, changed, removed string
		kept                      []string
		err                       error
	}{
		{name: "no table", none: true, steps: slices.Concat([]string{"add table"},
			kinded("add set", setNames), kinded("add", all)),
			missing: "the table"},
		{name: "as applied", kept: allKept},
		{name: "as applied, read to the elements", elements: true, kept: allKept},
		{name: "as applied, the cheap check", cheap: true, kept: allKept},
		{name: "table flushed", damage: func(o *observed) {
			for _, c := range o.chains {
				c.rules = nil
			}
		}, steps: kinded("rewrite chain", withRulesChains), changed: names(kinded("chain", withRulesChains)),
			kept: without(allKept, kinded("chain", withRulesChains)...)},
		{name: "table flushed, the cheap check", cheap: true, damage: func(o *observed) {
			for _, c := range o.chains {
				c.rules = nil
			}
		}, kept: allKept},
		{name: "chain deleted", damage: func(o *observed) {
			delete(o.chains, entry)
			o.chains["input"].rules, o.chains["output"].rules = nil, nil
		}, steps: []string{"add chain " + entry, "rewrite chain input", "rewrite chain output"},
			missing: "chain " + entry, changed: "chain input, chain output",
			kept: without(allKept, "chain "+entry, "chain input", "chain output")},
		{name: "set deleted", damage: func(o *observed) {
			delete(o.sets, set)
			o.chains[setChain].rules = nil
		}, steps: []string{"add set " + set, "rewrite chain " + setChain},
			missing: "set " + set, changed: "chain " + setChain, kept: without(allKept, "set "+set, "chain "+setChain)},
		{name: "set made again differently", damage: func(o *observed) { o.sets[set].Size = 7 },
			steps:   []string{"rewrite set " + set, "rewrite chain " + setChain},
			changed: "chain " + setChain + ", set " + set, kept: without(allKept, "set "+set, "chain "+setChain)},
		{name: "rule added", damage: func(o *observed) { o.chains[entry].rules = append(o.chains[entry].rules, "counter") },
			steps: []string{"rewrite chain " + entry}, changed: "chain " + entry, kept: without(allKept, "chain "+entry)},
		{name: "rule added, the cheap check", cheap: true, damage: func(o *observed) {
			o.chains[entry].rules = append(o.chains[entry].rules, "counter")
		}, kept: allKept},
		{name: "policy drop", damage: func(o *observed) {
			drop := nftables.ChainPolicyDrop
			o.chains["input"].chain.Policy = &drop
		}, steps: []string{"recreate chain input"}, changed: "chain input", kept: without(allKept, "chain input")},
		{name: "base chain made regular, the cheap check", cheap: true, damage: func(o *observed) {
			o.chains["forward"].chain = &nftables.Chain{Name: "forward", Table: o.chains["forward"].chain.Table}
		}, steps: []string{"recreate chain forward"}, changed: "chain forward", kept: without(allKept, "chain forward")},
		{name: "foreign chain, set, counter and flowtable", damage: func(o *observed) {
			table := rs.tableOf()
			o.chains["mine"] = &observedChain{chain: &nftables.Chain{Name: "mine", Table: table}, rules: []string{"counter"}}
			o.sets["myset"] = &nftables.Set{Table: table, Name: "myset"}
			o.objects = append(o.objects, &nftables.NamedObj{Table: table, Name: "mycounter", Type: nftables.ObjTypeCounter})
			o.flowtables = append(o.flowtables, &nftables.Flowtable{Table: table, Name: "f"})
		}, steps: []string{"delete chain mine", "delete set myset", "delete object mycounter", "delete flowtable f"},
			removed: "chain mine, set myset, object mycounter, flowtable f", kept: allKept},
		{name: "marker deleted", damage: func(o *observed) { delete(o.chains, MarkerChain) }, err: ErrNotOurs},
		{name: "marker deleted, the table ours", adopt: true, damage: func(o *observed) { delete(o.chains, MarkerChain) },
			steps: []string{"add chain " + MarkerChain}, missing: "chain " + MarkerChain, kept: without(allKept, "chain "+MarkerChain)},
		{name: "reload: one entry and one set's networks changed", rs: changed, elements: true, damage: func(o *observed) {
			o.elements[set] = [][]byte{inSrv, outSrv}
		}, steps: slices.Concat([]string{"drop 1 from set " + set}, kinded("add chain", []string{newIn, newOut}),
			[]string{"rewrite chain input", "rewrite chain output"}, kinded("add chain", newBase), kinded("delete chain", reloadRemoved)),
			missing: names(kinded("chain", append([]string{newIn, newOut}, newBase...))), changed: "chain input, chain output",
			removed: names(kinded("chain", reloadRemoved)),
			kept:    without(allKept, kinded("chain", append([]string{"input", "output"}, reloadRemoved...))...)},
		{name: "repair: addresses outside the networks stay", damage: func(o *observed) {
			o.elements = map[string][][]byte{set: {netip.MustParseAddr("198.18.0.1").AsSlice()}}
		}, kept: allKept},
		{name: "set with a timeout it lacks", damage: func(o *observed) {
			o.sets[set].HasTimeout, o.sets[set].Timeout = true, time.Hour
		}, steps: []string{"rewrite set " + set, "rewrite chain " + setChain},
			changed: "chain " + setChain + ", set " + set, kept: without(allKept, "set "+set, "chain "+setChain)},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := rs
			if c.rs != nil {
				want = c.rs
			}
			d := withRules
			switch {
			case c.cheap:
				d = structure
			case c.elements:
				d = withElements
			}
			var have *observed
			if !c.none {
				have = observedFresh(rs, d)
				if c.damage != nil {
					c.damage(have)
				}
			}
			p, err := plan(want, have, c.adopt)
			if !errors.Is(err, c.err) {
				t.Fatalf("plan: %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if got := p.steps(); !slices.Equal(got, c.steps) {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.steps, "\n"))
			}
			ch := p.changes()
			missing, changed, removed := ch.describe()
			if missing != c.missing || changed != c.changed || removed != c.removed {
				t.Errorf("described missing %q, changed %q, removed %q; want %q, %q, %q", missing, changed, removed, c.missing, c.changed, c.removed)
			}
			if got := p.kept(); !slices.Equal(sorted(got), sorted(c.kept)) {
				t.Errorf("kept:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.kept, "\n"))
			}
			if ch.Empty() != (len(c.steps) == 0) {
				t.Errorf("Changes.Empty() = %v with steps %q", ch.Empty(), c.steps)
			}
		})
	}
}

// TestPlanCounts: the counts that the reload's log line gives come from the
// plan.
func TestPlanCounts(t *testing.T) {
	rs := mustBuild(t, repairYAML)
	have := observedFresh(rs, withElements)
	have.elements[rs.Sets[0].Name] = [][]byte{netip.MustParseAddr("198.18.0.1").AsSlice(), netip.MustParseAddr("192.0.2.7").AsSlice()}
	p, err := plan(rs, have, false)
	if err != nil {
		t.Fatal(err)
	}
	ch := p.changes()
	if ch.Unchanged != len(rs.Chains) || ch.SetsKept != len(rs.Sets) || ch.ElementsRemoved != 1 || ch.Created {
		t.Errorf("%+v: want %d entry chains and %d sets kept, 1 address dropped", ch, len(rs.Chains), len(rs.Sets))
	}
}

func sorted(list []string) []string {
	return slices.Sorted(slices.Values(list))
}

// TestDescribe: the log line's lists name each kind, and stop at
// maxDescribed names.
func TestDescribe(t *testing.T) {
	many := make([]string, maxDescribed+3)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	ch := Changes{Added: many, SetsAdded: []string{"s"}, Rewritten: []string{"input"}, SetsRemoved: []string{"old"}, ObjectsRemoved: []string{"object n"}}
	missing, changed, removed := ch.describe()
	if want := "chain c19, and 4 more"; !strings.HasPrefix(missing, "chain c0, chain c1, ") || !strings.HasSuffix(missing, want) {
		t.Errorf("missing %q, want the first %d and %q", missing, maxDescribed, want)
	}
	if changed != "chain input" || removed != "set old, object n" {
		t.Errorf("changed %q, removed %q", changed, removed)
	}
	if ch.Empty() || !(Changes{SetsKept: 3, Unchanged: 2}).Empty() || (Changes{ElementsRemoved: 1}).Empty() {
		t.Error("Empty: only what changes the kernel counts")
	}
	if missing, _, _ := (Changes{Created: true, Added: many}).describe(); missing != "the table" {
		t.Errorf("a created table is described as %q", missing)
	}
}
