package managed

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// errCheckOnly refuses to commit the plan of a cheap check, which does not
// know which chains changed.
var errCheckOnly = errors.New("the plan of a structure check cannot be committed")

// commit sends the plan to the kernel in one netlink batch, which the
// kernel applies whole or not at all; an empty plan sends nothing. Order
// matters within the batch: every chain that changes is flushed first,
// dropping its references to chains and sets; then sets are made; then
// chains in the plan's order, so that a jump names a chain that exists;
// and what the ruleset lacks is deleted last. On an error before the batch
// is sent, conn holds part of it: close conn.
func commit(conn *nftables.Conn, p *tablePlan) error {
	if p.checkOnly {
		return errCheckOnly
	}
	if p.changes().Empty() {
		return nil
	}
	if p.create {
		conn.AddTable(p.table)
	}
	p.flushChains(conn)
	if err := p.makeSets(conn); err != nil {
		return err
	}
	if err := p.makeChains(conn); err != nil {
		return err
	}
	p.deleteStale(conn)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("applying table inet %s: %w", p.table.Name, err)
	}
	return nil
}

// flushChains queues the flush of every chain that changes or goes, and
// the deletion of those made again.
func (p *tablePlan) flushChains(conn *nftables.Conn) {
	for _, cs := range p.chains {
		switch cs.action {
		case recreate:
			conn.FlushChain(cs.have)
			conn.DelChain(cs.have)
		case rewrite:
			conn.FlushChain(cs.have)
		}
	}
	for _, c := range p.staleChains {
		conn.FlushChain(c)
	}
}

// makeSets queues the sets added or made again, and the strays' removal
// from those kept.
func (p *tablePlan) makeSets(conn *nftables.Conn) error {
	for _, st := range p.sets {
		switch st.action {
		case keep:
			if len(st.strays) > 0 {
				if err := conn.SetDeleteElements(st.have, st.strays); err != nil {
					return fmt.Errorf("set %s: %w", st.want.Name, err)
				}
			}
			continue
		case rewrite:
			conn.DelSet(st.have)
		}
		if err := conn.AddSet(st.want.nftSet(p.table), nil); err != nil {
			return fmt.Errorf("set %s: %w", st.want.Name, err)
		}
	}
	return nil
}

// makeChains queues the chains added or made again, and the rules of
// every chain that is not kept.
func (p *tablePlan) makeChains(conn *nftables.Conn) error {
	for _, cs := range p.chains {
		c := cs.have
		switch cs.action {
		case keep:
			continue
		case add, recreate:
			c = conn.AddChain(cs.want.chain(p.table, p.prio))
		}
		if err := addRules(conn, c, cs.want.rules); err != nil {
			return err
		}
	}
	return nil
}

// deleteStale queues the deletion of what the ruleset lacks: the chains,
// all flushed before any is deleted, as one may jump to another; then the
// sets they added to, and what else another program put in the table.
func (p *tablePlan) deleteStale(conn *nftables.Conn) {
	for _, c := range p.staleChains {
		conn.DelChain(c)
	}
	for _, s := range p.staleSets {
		conn.DelSet(s)
	}
	for _, o := range p.objects {
		conn.DeleteObject(o)
	}
	for _, f := range p.flowtables {
		conn.DelFlowtable(f)
	}
}

// addRules queues the rules at the end of chain c.
func addRules(conn *nftables.Conn, c *nftables.Chain, rules []Rule) error {
	for _, r := range rules {
		var ud []byte
		if r.Comment != "" {
			ud = userData(r.Comment)
		}
		exprs := r.Exprs
		if m := r.GotoMap; m != nil {
			vmap := &nftables.Set{Table: c.Table, Anonymous: true, Constant: true, IsMap: true,
				KeyType: m.Family.SetType(), DataType: nftables.TypeVerdict}
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
