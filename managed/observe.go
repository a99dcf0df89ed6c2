package managed

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// observed is what the kernel holds of the managed table.
type observed struct {
	chains     map[string]*observedChain
	sets       map[string]*nftables.Set
	objects    []*nftables.NamedObj
	flowtables []*nftables.Flowtable
	// depth says what was read beside the names and kinds.
	depth depth
	// elements are the addresses each named set holds, when depth is
	// withElements.
	elements map[string][][]byte
}

// observedChain is a chain of the managed table and its rules.
type observedChain struct {
	chain *nftables.Chain
	// rules are the rules' fingerprints, in order (see rulesOf), when
	// depth is at least withRules.
	rules []string
}

// depth is how much of the table observe reads.
type depth int

const (
	// structure is the chains and sets by name and kind: the cheap check
	// that Watch makes every timing.recheck. Its plan is never committed.
	structure depth = iota
	// withRules adds each chain's rules: what a repair compares.
	withRules
	// withElements adds each set's addresses: a reload drops those that
	// their entry no longer holds.
	withElements
)

// observe reads the managed table to the given depth: its chains, with
// their rules, its sets, with their addresses, its objects and
// flowtables. It returns nil when there is no such table.
func observe(conn *nftables.Conn, table *nftables.Table, d depth) (*observed, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == table.Name }) {
		return nil, nil
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	o := &observed{chains: map[string]*observedChain{}, sets: map[string]*nftables.Set{}, depth: d}
	for _, c := range chains {
		if c.Table.Name != table.Name {
			continue
		}
		c.Table = table
		oc := &observedChain{chain: c}
		if d >= withRules {
			oc.rules = rulesOf(conn, c)
		}
		o.chains[c.Name] = oc
	}
	sets, err := conn.GetSets(table)
	if err != nil {
		return nil, fmt.Errorf("listing the sets of table inet %s: %w", table.Name, err)
	}
	if d >= withElements {
		o.elements = map[string][][]byte{}
	}
	for _, s := range sets {
		s.Table = table
		o.sets[s.Name] = s
		// Only sets that can be ours: another program's may hold what
		// google/nftables cannot read, and goes anyway.
		if d < withElements || !ourKind(s) {
			continue
		}
		elems, err := conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("reading set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			o.elements[s.Name] = append(o.elements[s.Name], e.Key)
		}
	}
	// Objects and flowtables of kinds google/nftables cannot read stay, and
	// so does the rest of the repair.
	if objs, err := conn.GetNamedObjects(table); err == nil {
		for _, obj := range objs {
			if n, ok := obj.(*nftables.NamedObj); ok {
				n.Table = table
				o.objects = append(o.objects, n)
			}
		}
	}
	if fts, err := conn.ListFlowtables(table); err == nil {
		o.flowtables = fts
	}
	return o, nil
}

// rulesOf are the fingerprints of the rules of the kernel's chain c. Rules
// that do not read (an expression google/nftables does not know) give one
// that matches no rule of ours.
func rulesOf(conn *nftables.Conn, c *nftables.Chain) []string {
	rules, err := conn.GetRules(c.Table, c)
	if err != nil {
		return []string{"unreadable: " + err.Error()}
	}
	var list []string
	for _, r := range rules {
		list = append(list, fingerprint(r.Exprs, r.UserData))
	}
	return list
}

// sameSet reports whether the kernel's set h is the set s asks for. The
// comment is not compared: google/nftables does not read it, and the name
// holds its hash.
func sameSet(h *nftables.Set, s Set) bool {
	w := s.nftSet(nil)
	return ourKind(h) && h.KeyType.Name == w.KeyType.Name && h.Size == w.Size &&
		h.HasTimeout == w.HasTimeout && h.Timeout == w.Timeout
}

// ourKind reports whether the kernel's set h is of the kind the exporter
// makes: named and dynamic, neither a map nor of intervals or
// concatenations.
func ourKind(h *nftables.Set) bool {
	return h.Dynamic && !h.Constant && !h.Interval && !h.IsMap && !h.Anonymous && !h.Concatenation
}

// fingerprints are the fingerprints of the chain's rules, as the kernel
// would list them.
func (wc wantChain) fingerprints() []string {
	var list []string
	for _, r := range wc.rules {
		exprs := r.Exprs
		if r.GotoMap != nil {
			exprs = append(exprs[:len(exprs):len(exprs)], &expr.Lookup{SourceRegister: 1, IsDestRegSet: true})
		}
		var ud []byte
		if r.Comment != "" {
			ud = userData(r.Comment)
		}
		list = append(list, fingerprint(exprs, ud))
	}
	return list
}

// fingerprint is a rule in a form that two rules share exactly when they
// match and do the same: its expressions in the kernel's encoding, with the
// counters' values and the names the kernel gives anonymous sets left
// out, and its user data (the comment).
func fingerprint(exprs []expr.Any, userData []byte) string {
	var b []byte
	for _, e := range exprs {
		data, err := expr.Marshal(byte(nftables.TableFamilyINet), canonical(e))
		if err != nil {
			data = fmt.Appendf(nil, "%T: %v", e, err)
		}
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	b = append(b, 0)
	return string(append(b, userData...))
}

// canonical is e without what changes while a rule stays the same.
func canonical(e expr.Any) expr.Any {
	switch e := e.(type) {
	case *expr.Counter:
		return &expr.Counter{}
	case *expr.Lookup:
		if strings.HasPrefix(e.SetName, "__") { // anonymous: __set%d, __map%d
			c := *e
			c.SetName, c.SetID = "", 0
			return &c
		}
	case *expr.Dynset:
		c := *e
		c.Exprs = make([]expr.Any, len(e.Exprs))
		for i, x := range e.Exprs {
			c.Exprs[i] = canonical(x)
		}
		return &c
	}
	return e
}
