package managed

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// ErrNotOurs means a table of the managed name exists that the exporter did
// not create. It is left alone.
var ErrNotOurs = errors.New("exists but was not created by ipacct_exporter (it lacks the chain " + MarkerChain + "): choose another table name in rules.yaml, or delete it")

// Changes says what an Apply did: what it found in the kernel that differed
// from the ruleset, and wrote.
type Changes struct {
	Created bool // the table was created
	// Added names the chains created; Rewritten those whose rules or hook
	// differed and were written again; Removed those the ruleset lacks.
	Added, Rewritten, Removed []string
	// Unchanged counts the entry chains kept, counters and all.
	Unchanged int
	// SetsAdded, SetsRewritten and SetsRemoved name the per-address sets
	// created, made again because they differed, and deleted; SetsKept
	// counts those kept, with their counters.
	SetsAdded, SetsRewritten, SetsRemoved []string
	SetsKept                              int
	// ElementsRemoved counts the addresses deleted from kept sets because
	// their entry no longer holds them.
	ElementsRemoved int
	// ObjectsRemoved names the stateful objects (named counters, quotas, …)
	// and flowtables that someone added to the table.
	ObjectsRemoved []string
}

// Empty reports whether Apply left the kernel as it was.
func (c Changes) Empty() bool {
	return !c.Created && c.ElementsRemoved == 0 &&
		len(c.Added)+len(c.Rewritten)+len(c.Removed)+len(c.SetsAdded)+len(c.SetsRewritten)+len(c.SetsRemoved)+len(c.ObjectsRemoved) == 0
}

// describe lists, for the log, what was missing (and so created), what
// differed (and was written again) and what was removed, each as "chain
// NAME", "set NAME", "object NAME", ….
func (c Changes) describe() (missing, changed, removed string) {
	if c.Created {
		missing = "the table"
	} else {
		missing = names(kinded("chain", c.Added), kinded("set", c.SetsAdded))
	}
	changed = names(kinded("chain", c.Rewritten), kinded("set", c.SetsRewritten))
	removed = names(kinded("chain", c.Removed), kinded("set", c.SetsRemoved), c.ObjectsRemoved)
	return missing, changed, removed
}

// kinded puts the kind before each name: "chain input".
func kinded(kind string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = kind + " " + n
	}
	return out
}

// names joins the lists for a log line, at most maxDescribed names.
func names(lists ...[]string) string {
	all := slices.Concat(lists...)
	if len(all) > maxDescribed {
		all = append(all[:maxDescribed], fmt.Sprintf("and %d more", len(all)-maxDescribed))
	}
	return strings.Join(all, ", ")
}

// maxDescribed bounds the names in a list of a log line.
const maxDescribed = 20

// Apply makes the managed table hold rs, in one netlink transaction: the
// kernel applies all of it or none of it. It compares every chain, rule and
// set of the table with rs: what is equal stays, counters and all; a chain
// whose rules differ gets rs's rules again; a set that differs is made
// again, empty; and what rs lacks is deleted, since the table is the
// exporter's alone. Entry chains are named after their rules, so a changed
// entry is a new chain, and every other chain counts on.
func Apply(conn *nftables.Conn, rs *Ruleset) (Changes, error) {
	p, err := observeAndPlan(conn, rs, withElements, false)
	if err != nil {
		return Changes{}, err
	}
	return p.changes(), commit(conn, p)
}

// observeAndPlan reads the table to depth d and plans rs against it; adopt
// as plan says.
func observeAndPlan(conn *nftables.Conn, rs *Ruleset, d depth, adopt bool) (*tablePlan, error) {
	have, err := observe(conn, rs.tableOf(), d)
	if err != nil {
		return nil, err
	}
	return plan(rs, have, adopt)
}

// Cleanup deletes the managed table, and nothing else. A table that is not
// there is no error; one that is not ours is.
func Cleanup(conn *nftables.Conn, name string) (deleted bool, err error) {
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	have, err := observe(conn, table, structure)
	switch {
	case err != nil || have == nil:
		return false, err
	case have.chains[MarkerChain] == nil:
		return false, fmt.Errorf("table inet %s %w", name, ErrNotOurs)
	}
	conn.DelTable(table)
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("deleting table inet %s: %w", name, err)
	}
	return true, nil
}
