package managed

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// ErrNotOurs means a table of the managed name exists that the exporter did
// not create. It is left alone.
var ErrNotOurs = errors.New("exists but was not created by ipacct_exporter (it lacks the chain " + MarkerChain + "): choose another table name in rules.yaml, or delete it")

// Changes says what an Apply did.
type Changes struct {
	Created        bool // the table was created
	Added, Removed []string
	JumpsRewritten []string // base chains whose jumps changed
	Unchanged      int      // entry chains kept, counters and all
	// SetsAdded and SetsRemoved name the per-address sets created and
	// deleted; SetsKept counts those kept, with their counters.
	SetsAdded, SetsRemoved []string
	SetsKept               int
	// ElementsRemoved counts the addresses deleted from kept sets because
	// their entry no longer holds them.
	ElementsRemoved int
}

// Empty reports whether Apply left the kernel as it was.
func (c Changes) Empty() bool {
	return !c.Created && len(c.Added)+len(c.Removed)+len(c.JumpsRewritten)+len(c.SetsAdded)+len(c.SetsRemoved)+c.ElementsRemoved == 0
}

// Apply makes the managed table hold rs, in one netlink transaction: the
// kernel applies all of it or none of it. Entry chains whose name (and so
// rules) did not change are not touched, so their counters go on.
func Apply(conn *nftables.Conn, rs *Ruleset) (Changes, error) {
	var ch Changes
	table := rs.tableOf()
	existing, err := ownChains(conn, table)
	if err != nil {
		return ch, err
	}
	if existing == nil {
		ch.Created = true
		conn.AddTable(table)
		conn.AddChain(&nftables.Chain{Name: MarkerChain, Table: table})
		existing = map[string]*nftables.Chain{}
	}

	// Sets first, so that the chains below can add to them.
	haveSets := map[string]*nftables.Set{}
	if !ch.Created {
		sets, err := conn.GetSets(table)
		if err != nil {
			return ch, fmt.Errorf("listing the sets of table inet %s: %w", rs.Table, err)
		}
		for _, s := range sets {
			s.Table = table
			haveSets[s.Name] = s
		}
	}
	wantSets := map[string]bool{}
	for _, s := range rs.Sets {
		wantSets[s.Name] = true
		if have := haveSets[s.Name]; have != nil {
			ch.SetsKept++
			n, err := dropStrays(conn, have, s.Networks)
			if err != nil {
				return ch, err
			}
			ch.ElementsRemoved += n
			continue
		}
		if err := conn.AddSet(s.nftSet(table), nil); err != nil {
			return ch, fmt.Errorf("set %s: %w", s.Name, err)
		}
		ch.SetsAdded = append(ch.SetsAdded, s.Name)
	}

	// New entry chains next, so that the jumps below can name them.
	wantChains := map[string]bool{}
	for _, c := range rs.Chains {
		wantChains[c.Name] = true
		if existing[c.Name] != nil {
			ch.Unchanged++
			continue
		}
		chain := conn.AddChain(&nftables.Chain{Name: c.Name, Table: table})
		if err := addRules(conn, chain, c.Rules); err != nil {
			return ch, err
		}
		ch.Added = append(ch.Added, c.Name)
	}
	prio := nftables.ChainPriority(rs.Priority)
	wantBase := map[string]BaseChain{}
	for _, bc := range rs.Base {
		wantBase[bc.Hook] = bc
	}
	// Then the base chains: a jump may only name a chain that exists, and
	// the old jumps must go before the chains they name can.
	for _, h := range hooks {
		have, exists := existing[h]
		want, wanted := wantBase[h]
		switch {
		case exists && !wanted:
			conn.FlushChain(have)
			conn.DelChain(have)
			ch.JumpsRewritten = append(ch.JumpsRewritten, h)
		case exists && !sameHook(have, h, prio):
			// A base chain's priority cannot change in place.
			conn.FlushChain(have)
			conn.DelChain(have)
			addBase(conn, table, h, prio, want.Jumps)
			ch.JumpsRewritten = append(ch.JumpsRewritten, h)
		case exists:
			jumps, err := jumpsOf(conn, have)
			if err != nil {
				return ch, err
			}
			if !slices.Equal(jumps, want.Jumps) {
				conn.FlushChain(have)
				for _, j := range want.Jumps {
					conn.AddRule(jumpRule(have, j))
				}
				ch.JumpsRewritten = append(ch.JumpsRewritten, h)
			}
		case wanted:
			addBase(conn, table, h, prio, want.Jumps)
			ch.JumpsRewritten = append(ch.JumpsRewritten, h)
		}
	}

	// The per-address base chains are named after their rules: a changed
	// one is a new chain, which replaces the old in the same transaction.
	for _, bc := range rs.AddrBase {
		wantChains[bc.Name] = true
		if existing[bc.Name] != nil {
			continue
		}
		accept := nftables.ChainPolicyAccept
		c := conn.AddChain(&nftables.Chain{
			Name: bc.Name, Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: hookNums[bc.Hook], Priority: nftables.ChainPriorityRef(prio), Policy: &accept,
		})
		if err := addRules(conn, c, bc.Rules); err != nil {
			return ch, err
		}
		ch.Added = append(ch.Added, bc.Name)
	}

	// Last, the chains nothing jumps to any more: all flushed before any is
	// deleted, as one may go to another. Then the sets they added to.
	var stale []*nftables.Chain
	for name, c := range existing {
		if name == MarkerChain || slices.Contains(hooks, name) || wantChains[name] {
			continue
		}
		conn.FlushChain(c)
		stale = append(stale, c)
		ch.Removed = append(ch.Removed, name)
	}
	for _, c := range stale {
		conn.DelChain(c)
	}
	slices.Sort(ch.Removed)
	for name, s := range haveSets {
		// Anonymous sets (the shards' verdict maps) go with their rules.
		if !wantSets[name] && !s.Anonymous {
			conn.DelSet(s)
			ch.SetsRemoved = append(ch.SetsRemoved, name)
		}
	}
	slices.Sort(ch.SetsRemoved)

	if ch.Empty() {
		return ch, nil
	}
	if err := conn.Flush(); err != nil {
		return Changes{}, fmt.Errorf("applying table inet %s: %w", rs.Table, err)
	}
	return ch, nil
}

// Cleanup deletes the managed table, and nothing else. A table that is not
// there is no error; one that is not ours is.
func Cleanup(conn *nftables.Conn, name string) (deleted bool, err error) {
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	existing, err := ownChains(conn, table)
	if err != nil || existing == nil {
		return false, err
	}
	conn.DelTable(table)
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("deleting table inet %s: %w", name, err)
	}
	return true, nil
}

// ownChains returns the chains of the managed table by name, nil if there is
// no such table, and ErrNotOurs if the table lacks the marker chain.
func ownChains(conn *nftables.Conn, table *nftables.Table) (map[string]*nftables.Chain, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	found := false
	for _, t := range tables {
		found = found || t.Name == table.Name
	}
	if !found {
		return nil, nil
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	byName := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table.Name == table.Name {
			c.Table = table
			byName[c.Name] = c
		}
	}
	if byName[MarkerChain] == nil {
		return nil, fmt.Errorf("table inet %s %w", table.Name, ErrNotOurs)
	}
	return byName, nil
}

var hookNums = map[string]*nftables.ChainHook{
	"input":   nftables.ChainHookInput,
	"output":  nftables.ChainHookOutput,
	"forward": nftables.ChainHookForward,
}

func sameHook(c *nftables.Chain, hook string, prio nftables.ChainPriority) bool {
	return c.Hooknum != nil && *c.Hooknum == *hookNums[hook] && c.Priority != nil && *c.Priority == prio && c.Type == nftables.ChainTypeFilter
}

func addBase(conn *nftables.Conn, table *nftables.Table, hook string, prio nftables.ChainPriority, jumps []string) {
	accept := nftables.ChainPolicyAccept
	c := conn.AddChain(&nftables.Chain{
		Name: hook, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: hookNums[hook], Priority: nftables.ChainPriorityRef(prio), Policy: &accept,
	})
	for _, j := range jumps {
		conn.AddRule(jumpRule(c, j))
	}
}

func addRules(conn *nftables.Conn, c *nftables.Chain, rules []Rule) error {
	for _, r := range rules {
		var ud []byte
		if r.Comment != "" {
			ud = userData(r.Comment)
		}
		exprs := r.Exprs
		if m := r.GotoMap; m != nil {
			key := nftables.TypeIPAddr
			if m.Family == "ipv6" {
				key = nftables.TypeIP6Addr
			}
			vmap := &nftables.Set{Table: c.Table, Anonymous: true, Constant: true, IsMap: true,
				KeyType: key, DataType: nftables.TypeVerdict}
			elems := make([]nftables.SetElement, len(m.Keys))
			for i, k := range m.Keys {
				elems[i] = nftables.SetElement{Key: k, VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: m.Chains[i]}}
			}
			if err := conn.AddSet(vmap, elems); err != nil {
				return fmt.Errorf("chain %s: verdict map: %w", c.Name, err)
			}
			exprs = append(slices.Clip(exprs), &expr.Lookup{SourceRegister: 1, SetName: vmap.Name, SetID: vmap.ID, IsDestRegSet: true})
		}
		conn.AddRule(&nftables.Rule{Table: c.Table, Chain: c, Exprs: exprs, UserData: ud})
	}
	return nil
}

// dropStrays deletes from a kept set the addresses outside its networks:
// they were counted under an entry that no longer holds them.
func dropStrays(conn *nftables.Conn, s *nftables.Set, networks []netip.Prefix) (int, error) {
	elems, err := conn.GetSetElements(s)
	if err != nil {
		return 0, fmt.Errorf("reading set %s: %w", s.Name, err)
	}
	var strays []nftables.SetElement
	for _, e := range elems {
		a, ok := netip.AddrFromSlice(e.Key)
		if ok && !slices.ContainsFunc(networks, func(p netip.Prefix) bool { return p.Contains(a) }) {
			strays = append(strays, nftables.SetElement{Key: e.Key})
		}
	}
	if len(strays) == 0 {
		return 0, nil
	}
	if err := conn.SetDeleteElements(s, strays); err != nil {
		return 0, fmt.Errorf("set %s: %w", s.Name, err)
	}
	return len(strays), nil
}

func jumpRule(from *nftables.Chain, to string) *nftables.Rule {
	return &nftables.Rule{Table: from.Table, Chain: from, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: to}}}
}

// jumpsOf lists the chains a base chain jumps to, in order.
func jumpsOf(conn *nftables.Conn, c *nftables.Chain) ([]string, error) {
	rules, err := conn.GetRules(c.Table, c)
	if err != nil {
		return nil, fmt.Errorf("reading chain %s: %w", c.Name, err)
	}
	var jumps []string
	for _, r := range rules {
		for _, e := range r.Exprs {
			if v, ok := e.(*expr.Verdict); ok && v.Kind == expr.VerdictJump {
				jumps = append(jumps, v.Chain)
			}
		}
	}
	return jumps, nil
}
