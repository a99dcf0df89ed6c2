package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// Limits of a per-address entry.
const (
	// DefaultSetSize is the kernel's customary size of a dynamic set, and
	// what nft gives one that names none.
	DefaultSetSize = 65535
	// maxSetSize bounds one set: at about 200 bytes of kernel memory an
	// element, 16 Mi addresses take 3 GiB.
	maxSetSize  = 1 << 24
	maxTimeout  = 365 * 24 * time.Hour
	maxNetworks = 1000
)

// Directions are the directions the entry counts: tag.In, tag.Out, or both.
func (e AddressEntry) Directions() []tag.Direction { return e.Direction.Tags() }

// Families are the address families of the entry's networks: IPv4, IPv6,
// or both, in that order.
func (e AddressEntry) Families() []family.Address {
	var out []family.Address
	for _, a := range family.Addresses {
		if len(e.NetworksOf(a)) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// NetworksOf are the entry's networks of one family.
func (e AddressEntry) NetworksOf(a family.Address) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range e.Networks {
		if family.Of(p.Addr()) == a {
			out = append(out, p)
		}
	}
	return out
}

// SetSize is the most addresses each set of the family holds: Size when the file gives one, else what the family's networks
// hold, rounded up to a power of two, at most DefaultSetSize. A set never
// needs more than its networks hold (three addresses need no 65535), and
// the rounding lets a reload that adds an address or two keep the set and
// its counts: a set of another size is another set.
func (e AddressEntry) SetSize(a family.Address) uint32 {
	if e.Size > 0 {
		return e.Size
	}
	var n uint64
	for _, p := range e.NetworksOf(a) {
		host := p.Addr().BitLen() - p.Bits()
		if host >= 16 {
			return DefaultSetSize
		}
		n += 1 << host
	}
	size := uint64(1)
	for size < n {
		size *= 2
	}
	return uint32(min(size, DefaultSetSize))
}

var addressKeys = []string{"tag", "description", "source", "networks", "direction", "hooks", "size", "timeout"}

func (d *decoder) addressEntry(n *yaml.Node, name string) (AddressEntry, entryPos) {
	e := AddressEntry{Line: n.Line}
	p := d.entryFields(n, name, addressKeys, func(key, field string, val *yaml.Node, p *entryPos) {
		switch key {
		case "tag":
			e.Tag, _, _ = d.str(val, field, false)
		case "description":
			e.Description, _, _ = d.str(val, field, true)
		case "source":
			e.Source, _ = decodeWord[Source](d, val, field)
		case "direction":
			e.Direction, _ = decodeWord[Direction](d, val, field)
		case "hooks":
			e.Hooks = decodeItems(d, val, key, field, p, false, 0, "", word[Hook])
		case "networks":
			e.Networks = decodeItems(d, val, key, field, p, false, maxNetworks, "an address entry counts the addresses of its networks", parsePrefix)
		case "size":
			if s, _, ok := d.str(val, field, false); ok {
				v, err := parseSize(s)
				if err != nil {
					d.errs.add(val.Line, field, "%v", err)
				}
				e.Size = v
			}
		case "timeout":
			if s, _, ok := d.str(val, field, false); ok {
				v, err := parseTimeout(s)
				if err != nil {
					d.errs.add(val.Line, field, "%v", err)
				}
				e.Timeout = v
			}
		}
	})
	return e, p
}

func parseSize(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || v > maxSetSize {
		return 0, fmt.Errorf("%s is not a set size: a number of addresses from 1 to %d", quote(s), maxSetSize)
	}
	return uint32(v), nil
}

// parseTimeout takes Prometheus' durations (30s, 12h, 7d, 1w), as the
// rest of the ecosystem's configuration does.
func parseTimeout(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil || d == 0 {
		return 0, fmt.Errorf("%s is not a timeout such as 30m, 12h or 7d", quote(s))
	}
	if t := time.Duration(d); t < time.Second || t > maxTimeout {
		return 0, fmt.Errorf("%s is out of range: from 1s to 365d", s)
	}
	return time.Duration(d), nil
}

func (e *AddressEntry) setDefaults() {
	if e.Source == "" {
		e.Source = SourceKernel
	}
	if e.Direction == "" {
		e.Direction = DirectionBoth
	}
	if e.Hooks == nil && e.Source != SourceFlow {
		e.Hooks = slices.Clone(Hooks)
	}
}

// validateAddresses checks the address entries. claims are the tags of the
// accounting entries: a tag counts by rules or per address, not both; rules
// are the rules they expand to.
func validateAddresses(f *File, pos *filePos, claims map[string]map[tag.Direction]int, rules int, errs *errList) {
	seen := map[string]int{}
	type where struct{ entry, item int }
	var spans []span[netip.Addr]
	var owners []where
	refs := make([]ref, len(f.Addresses))
	for i := range f.Addresses {
		e := &f.Addresses[i]
		r := ref{line: e.Line, name: fmt.Sprintf("addresses[%d]", i)}
		if i < len(pos.addresses.entries) {
			r.p = &pos.addresses.entries[i]
			r.name = fmt.Sprintf("addresses[%d]", r.p.index)
		}
		refs[i] = r
		tagLine, tagField := r.field("tag")
		switch {
		case e.Tag == "":
			if r.missing("tag") {
				errs.add(tagLine, tagField, "missing; every entry needs a tag")
			}
		case checkTag(e.Tag) != "":
			errs.add(tagLine, tagField, "%s", checkTag(e.Tag))
		case seen[e.Tag] > 0:
			errs.add(tagLine, tagField, "%s is already the tag of the address entry at line %d", e.Tag, seen[e.Tag])
		case claims[e.Tag] != nil:
			line := claims[e.Tag][tag.In] + claims[e.Tag][tag.Out] // one is 0
			if claims[e.Tag][tag.In] > 0 {
				line = claims[e.Tag][tag.In]
			}
			errs.add(tagLine, tagField, "%s is already the tag of the accounting entry at line %d; a tag counts by rules or per address, not both", e.Tag, line)
		default:
			seen[e.Tag] = e.Line
		}
		checkEntryDescription(r, e.Tag, e.Description, "set", errs)
		directionOK := checkWord(r, "direction", e.Direction, directions, errs)
		flow := e.Source == SourceFlow
		hooksOK := true
		switch {
		case !checkWord(r, "source", e.Source, sources, errs):
			hooksOK = false
		case flow && e.Hooks != nil:
			line, field := r.field("hooks")
			errs.add(line, field, "hooks are where the kernel counts, and a flow entry has none; leave hooks out")
		case !flow:
			hooksOK = checkHookList(r, e.Hooks, "empty list; leave hooks out for [input, output, forward]", errs)
		}
		if len(e.Networks) == 0 && (r.p == nil || r.p.values["networks"] == 0 && !r.p.broken) {
			errs.add(e.Line, r.name+".networks", "missing; an address entry counts the addresses of its networks")
		}
		if r.checkPrefixes("networks", e.Networks, errs) {
			for j, p := range e.Networks {
				spans = append(spans, span[netip.Addr]{p.Addr(), lastAddr(p), len(owners)})
				owners = append(owners, where{i, j})
			}
		}
		if hooksOK && directionOK && !flow && (r.p == nil || !r.p.broken) {
			n := 0
			for _, d := range e.Directions() {
				// A rule per network sends its packets to the set, at
				// each hook that sees the direction.
				seen := 0
				for _, h := range e.Hooks {
					if h.Sees(d) {
						seen++
						n += len(e.Networks)
					}
				}
				if seen == 0 {
					need := HookOutput
					if d == tag.In {
						need = HookInput
					}
					line, field := r.field("hooks")
					errs.add(line, field, "direction %s is counted at %s or forward, and hooks has neither", d, need)
				}
			}
			rules = r.countRules(rules, n, errs)
		}
	}
	// Across entries: an address in two entries would be counted in both.
	for _, o := range overlaps(spans, netip.Addr.Compare) {
		a, b := owners[o.later], owners[o.earlier]
		if a.entry == b.entry {
			continue // reported by checkPrefixes
		}
		// Networks of flow entries may nest, the longest prefix owning
		// an address; an address still belongs to one entry.
		ea, eb := &f.Addresses[a.entry], &f.Addresses[b.entry]
		if ea.Source == SourceFlow && eb.Source == SourceFlow && ea.Networks[a.item] != eb.Networks[b.item] {
			continue
		}
		r := refs[a.entry]
		r.itemError(errs, "networks", a.item, "%s overlaps %s of %s; an address is counted by one entry",
			fmtPrefix(f.Addresses[a.entry].Networks[a.item]), fmtPrefix(f.Addresses[b.entry].Networks[b.item]), refs[b.entry].name+"."+refs[b.entry].short("networks", b.item))
	}
}
