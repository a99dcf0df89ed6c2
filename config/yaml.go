package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// filePos records where the values of a File were written, for messages.
// Validation works without it (the file's own lines are then used), so that
// a File can be validated again.
type filePos struct {
	table, count int  // lines of these values; 0: not written
	broken       bool // the file is not a mapping
	accounting   listPos
	addresses    listPos
	flow         int // line of the flow mapping
	routers      listPos
}

// listPos is where a list of entries was written.
type listPos struct {
	line    int  // of the value; 0: not written
	broken  bool // not a list
	listed  int  // entries written, decoded or not
	entries []entryPos
}

type entryPos struct {
	index  int                  // in the accounting list as written
	values map[string]int       // line of each key's value
	items  map[string][]itemPos // per list key, one per decoded item
	scalar map[string]bool      // the list was written as a single value
	broken bool                 // some value did not decode
}

// itemPos is where a list item was written; a broken item is left out of
// the list, so its index there may differ from index.
type itemPos struct{ line, index int }

// decoder walks the YAML tree into a File, reporting what does not fit the
// schema. Meaning (defaults, ranges, overlaps) is validate's.
type decoder struct {
	errs    *errList
	aliased int                // values that aliases repeated, see maxAliased
	sizes   map[*yaml.Node]int // values of an anchor, once counted
	spent   bool               // aliases repeated too much: decode no more
}

// visit resolves an alias, counting the values it repeats against
// maxAliased, before any of them is decoded. It returns nil once the
// aliases have repeated too many.
func (d *decoder) visit(n *yaml.Node, field string) *yaml.Node {
	if d.spent {
		return nil
	}
	alias := n
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if alias == n {
		return n
	}
	if d.aliased += d.size(n); d.aliased > maxAliased {
		d.spent = true
		d.errs.add(alias.Line, field, "aliases repeat more than %d values by this one, at most %d are allowed: each use of an alias copies all the values of its anchor", maxAliased, maxAliased)
		return nil
	}
	return n
}

// size counts the values of n and below, an alias among them as one: the
// values it repeats count when the decoder gets to it. It saturates past
// maxAliased.
func (d *decoder) size(n *yaml.Node) int {
	if s, ok := d.sizes[n]; ok {
		return s
	}
	s := 1
	for _, c := range n.Content {
		if s += d.size(c); s > maxAliased {
			s = maxAliased + 1
			break
		}
	}
	d.sizes[n] = s
	return s
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.ScalarNode:
		return quote(n.Value)
	}
	return "an alias"
}

// keyName is a key as a part of a FIELD path.
func keyName(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// mapping calls fn for each key of a mapping, in order, after rejecting
// keys that are not plain strings and keys given twice.
func (d *decoder) mapping(n *yaml.Node, prefix string, keys []string, fn func(key string, keyLine int, val *yaml.Node)) {
	join := func(k string) string {
		if prefix == "" {
			return keyName(k)
		}
		return prefix + "." + keyName(k)
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.visit(n.Content[i], prefix)
		if k == nil {
			return
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errs.add(k.Line, prefix, "expected a key, got %s", describe(k))
			continue
		case k.Tag == "!!merge":
			d.errs.add(k.Line, join(k.Value), "merge keys are not supported; write the keys out")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			d.errs.add(k.Line, join(k.Value), "given twice, first at line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		if !slices.Contains(keys, k.Value) {
			msg := "unknown key"
			if s := suggest(k.Value, keys); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.errs.add(k.Line, join(k.Value), "%s", msg)
			continue
		}
		fn(k.Value, k.Line, n.Content[i+1])
	}
}

// suggest returns the key closest to a misspelt one, if it is close.
func suggest(k string, keys []string) string {
	if len(k) > 32 {
		return ""
	}
	best, dist := "", 3
	for _, v := range keys {
		if d := editDistance(strings.ToLower(k), v); d < dist {
			best, dist = v, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// noValue reports a key written without a value (or with null): never a
// default, nor "any", but a mistake, such as a list left behind after its
// items were deleted. advice says what to write instead.
func (d *decoder) noValue(n *yaml.Node, field, advice string) {
	d.errs.add(n.Line, field, "no value; %s", advice)
}

// str decodes a string value. ok is false when the value is null or not a
// string, both reported.
func (d *decoder) str(n *yaml.Node, field string, emptyOK bool) (s string, line int, ok bool) {
	if n = d.visit(n, field); n == nil {
		return "", 0, false
	}
	if isNull(n) {
		d.noValue(n, field, "write one")
		return "", n.Line, false
	}
	if n.Kind != yaml.ScalarNode {
		d.errs.add(n.Line, field, "expected a string, got %s", describe(n))
		return "", n.Line, false
	}
	if n.Value == "" && !emptyOK {
		d.errs.add(n.Line, field, "empty; leave the key out for the default")
		return "", n.Line, false
	}
	return n.Value, n.Line, true
}

// decodeWord decodes a string value into one of the closed vocabularies
// (values.go); whether it is one of their words is validate's concern. line
// is where the value is, 0 when it is not a string.
func decodeWord[T ~string](d *decoder, n *yaml.Node, field string) (T, int) {
	s, line, _ := d.str(n, field, false)
	return T(s), line
}

// word takes any string as a word of a closed vocabulary, for decodeItems.
func word[T ~string](s string) (T, error) { return T(s), nil }

// list decodes a list value into its (unresolved) items. With scalarOK a
// single value stands for a list of one. ok is false when the value is
// null or not a list, both reported; advice, when set, says what to write
// instead of null.
func (d *decoder) list(n *yaml.Node, field string, scalarOK bool, advice string) (items []*yaml.Node, line int, scalar, ok bool) {
	if n = d.visit(n, field); n == nil {
		return nil, 0, false, false
	}
	if isNull(n) {
		if advice == "" {
			advice = "write a list, or leave the key out"
		}
		d.noValue(n, field, advice)
		return nil, n.Line, false, false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return n.Content, n.Line, false, true
	case yaml.ScalarNode:
		if scalarOK {
			return []*yaml.Node{n}, n.Line, true, true
		}
		msg := "expected a list, got " + describe(n)
		if simple(n.Value) {
			msg += "; write [" + n.Value + "]"
		}
		d.errs.add(n.Line, field, "%s", msg)
	default:
		d.errs.add(n.Line, field, "expected a list, got %s", describe(n))
	}
	return nil, n.Line, false, false
}

// simple reports whether s can be written in a YAML flow list as it is.
func simple(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:/", c) >= 0) {
			return false
		}
	}
	return true
}

// entryList decodes a list of entry mappings (accounting, addresses),
// recording in lp where the list and its entries were written. entry
// decodes one mapping, adds it to the File, and returns its positions.
func (d *decoder) entryList(val *yaml.Node, field, want string, lp *listPos, entry func(n *yaml.Node, name string) entryPos) {
	items, line, _, ok := d.list(val, field, false, "")
	if !ok {
		lp.line, lp.broken = val.Line, line > 0
		return
	}
	lp.line, lp.listed = line, len(items)
	if len(items) > maxEntries {
		d.errs.add(line, field, "%d entries, at most %d are allowed", len(items), maxEntries)
		return
	}
	for i, item := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		n := d.visit(item, name)
		if n == nil {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errs.add(n.Line, name, "expected a mapping with %s, got %s", want, describe(n))
			continue
		}
		p := entry(n, name)
		p.index = i
		lp.entries = append(lp.entries, p)
	}
}

// entryFields decodes the mapping of one list entry: it calls decode for
// each of its keys with the key's full name (accounting[2].ports) and value,
// and records where each value is and whether any of them broke.
func (d *decoder) entryFields(n *yaml.Node, name string, keys []string, decode func(key, field string, val *yaml.Node, p *entryPos)) entryPos {
	p := entryPos{
		values: make(map[string]int),
		items:  make(map[string][]itemPos),
		scalar: make(map[string]bool),
	}
	d.mapping(n, name, keys, func(key string, _ int, val *yaml.Node) {
		before := len(d.errs.errs)
		if val.Line > 0 {
			p.values[key] = val.Line
		}
		decode(key, name+"."+key, val, &p)
		if len(d.errs.errs) > before {
			p.broken = true
		}
	})
	return p
}

// decodeItems decodes a list of strings, each through parse, recording
// where each was written. An item that does not parse is reported and left
// out. max bounds the length (0: no bound). advice, when set, rejects an
// empty list, and says what to write instead of it or of null. Hooks come
// back as an empty, not nil, list when written empty, so that they are not
// defaulted.
func decodeItems[T any](d *decoder, val *yaml.Node, key, field string, p *entryPos, scalarOK bool, max int, advice string, parse func(string) (T, error)) []T {
	nodes, line, scalar, ok := d.list(val, field, scalarOK, advice)
	if !ok {
		return nil
	}
	p.values[key], p.scalar[key] = line, scalar
	switch {
	case len(nodes) == 0 && advice != "":
		d.errs.add(line, field, "empty list; %s", advice)
		return nil
	case max > 0 && len(nodes) > max:
		d.errs.add(line, field, "%d items, but an entry may expand to at most %d rules per direction and hook", len(nodes), max)
		return nil
	}
	out := make([]T, 0, len(nodes))
	for i, item := range nodes {
		n := d.visit(item, field)
		if n == nil {
			break
		}
		// The name is formatted only for an error: lists can be long.
		name := func() string {
			if scalar {
				return field
			}
			return fmt.Sprintf("%s[%d]", field, i)
		}
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errs.add(n.Line, name(), "expected a value, got %s", describe(n))
			continue
		}
		v, err := parse(n.Value)
		if err != nil {
			d.errs.add(n.Line, name(), "%v", err)
			continue
		}
		out = append(out, v)
		p.items[key] = append(p.items[key], itemPos{n.Line, i})
	}
	return out
}
