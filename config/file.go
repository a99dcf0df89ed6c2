package config

import (
	"fmt"
	"slices"

	"github.com/ipacct/ipacct_exporter/tag"
	"go.yaml.in/yaml/v3"
)

const (
	defaultTable = "ipacct"
	defaultCount = CountAccepted
	maxTableLen  = 32
)

var fileKeys = []string{"table", "count", "accounting", "addresses", "flow"}

func (d *decoder) file(root *yaml.Node, f *File, pos *filePos) {
	if root = d.visit(root, ""); root == nil || isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		d.errs.add(root.Line, "", "expected a mapping with the key accounting, got %s", describe(root))
		pos.broken = true
		return
	}
	d.mapping(root, "", fileKeys, func(key string, keyLine int, val *yaml.Node) {
		switch key {
		case "table":
			f.Table, pos.table, _ = d.str(val, key, false)
		case "count":
			f.Count, pos.count = decodeWord[Count](d, val, key)
		case "addresses":
			d.entryList(val, key, "a tag and networks", &pos.addresses, func(n *yaml.Node, name string) entryPos {
				e, p := d.addressEntry(n, name)
				f.Addresses = append(f.Addresses, e)
				return p
			})
		case "accounting":
			d.entryList(val, key, "at least a tag", &pos.accounting, func(n *yaml.Node, name string) entryPos {
				e, p := d.entry(n, name)
				f.Accounting = append(f.Accounting, e)
				return p
			})
		case "flow":
			d.flow(val, f, pos)
		}
	})
}

// setDefaults fills in what the file leaves out, as the types document.
// Applied twice it changes nothing more.
func (f *File) setDefaults() {
	if f.Table == "" {
		f.Table = defaultTable
	}
	if f.Count == "" {
		f.Count = defaultCount
	}
	for i := range f.Accounting {
		f.Accounting[i].setDefaults()
	}
	for i := range f.Addresses {
		f.Addresses[i].setDefaults()
	}
}

// validate checks a File with its defaults applied. pos says where values
// were written; nil (a File validated again) uses the entries' lines.
func validate(f *File, pos *filePos, errs *errList) {
	if pos == nil {
		pos = &filePos{}
	}
	if !validTable(f.Table) {
		errs.add(pos.table, "table", "%s is not a table name: 1 to %d letters, digits, '_' and '-', starting with a letter or '_'", quote(f.Table), maxTableLen)
	}
	if !slices.Contains(counts, f.Count) {
		errs.add(pos.count, "count", "%s", notOneOf(f.Count, "count", counts))
	}
	addressesWritten := len(f.Addresses) > 0 || pos.addresses.listed > 0 || pos.addresses.broken
	switch {
	case len(f.Accounting) > maxEntries:
		errs.add(pos.accounting.line, "accounting", "%d entries, at most %d are allowed", len(f.Accounting), maxEntries)
	case len(f.Accounting) > 0 || pos.accounting.listed > 0 || pos.accounting.broken || pos.broken:
		// Reported, if at all, by the decoder.
	case pos.accounting.line > 0:
		errs.add(pos.accounting.line, "accounting", "no entries")
	case addressesWritten || pos.addresses.line > 0:
	default:
		errs.add(0, "", "no accounting or addresses entries")
	}
	if pos.addresses.line > 0 && !addressesWritten {
		errs.add(pos.addresses.line, "addresses", "no entries")
	}
	claims := make(map[string]map[tag.Direction]int)
	tagSources := make(map[string]sourceClaim)
	rules := 0
	for i := range f.Accounting {
		r := entryRef{ref{line: f.Accounting[i].Line, name: fmt.Sprintf("accounting[%d]", i)}, &f.Accounting[i]}
		if i < len(pos.accounting.entries) {
			r.p = &pos.accounting.entries[i]
			r.name = fmt.Sprintf("accounting[%d]", r.p.index)
		}
		n := r.validate(errs)
		r.claim(claims, tagSources, errs)
		rules = r.countRules(rules, n, errs)
	}
	validateAddresses(f, pos, claims, rules, errs)
	validateFlow(f, pos, errs)
}

func validTable(s string) bool {
	if s == "" || len(s) > maxTableLen || !(isLetter(s[0]) || s[0] == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Kernel is a copy of the file with only the entries counted by the
// kernel: what the managed table holds.
func (f *File) Kernel() *File {
	k := *f
	k.Accounting, k.Addresses = nil, nil
	for _, e := range f.Accounting {
		if e.Source != SourceFlow {
			k.Accounting = append(k.Accounting, e)
		}
	}
	for _, e := range f.Addresses {
		if e.Source != SourceFlow {
			k.Addresses = append(k.Addresses, e)
		}
	}
	return &k
}

// HasFlows reports whether any entry is counted from flows.
func (f *File) HasFlows() bool {
	for _, e := range f.Accounting {
		if e.Source == SourceFlow {
			return true
		}
	}
	for _, e := range f.Addresses {
		if e.Source == SourceFlow {
			return true
		}
	}
	return false
}
