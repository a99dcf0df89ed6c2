package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ipacct/ipacct_exporter/nftmatch"
	"github.com/ipacct/ipacct_exporter/tag"
)

const (
	defaultTable = "ipacct"
	defaultCount = "accepted"
	// maxTagLen leaves room for the suffix the exporter adds, "_out" at
	// most, within tag.MaxLen.
	maxTagLen         = tag.MaxLen - len("_out")
	maxTableLen       = 32
	maxDescriptionLen = 128 // bytes
	maxInterfaceLen   = 15  // IFNAMSIZ less the NUL
	// maxExcept keeps a rule within the kernel's 128 expressions
	// (NFT_RULE_MAXEXPRS): each remote_except item is three, the other
	// matches and the counter at most 15.
	maxExcept = 32
)

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
		a := &f.Addresses[i]
		if a.Source == "" {
			a.Source = SourceKernel
		}
		if a.Direction == "" {
			a.Direction = "both"
		}
		if a.Hooks == nil && a.Source != SourceFlows {
			a.Hooks = slices.Clone(hooks)
		}
	}
}

func (e *Entry) setDefaults() {
	if e.Source == "" {
		e.Source = SourceKernel
	}
	if e.Direction == "" {
		e.Direction = "both"
	}
	if e.Hooks == nil && e.Source != SourceFlows {
		e.Hooks = []string{"input", "output"}
	}
	// An empty list means any protocol, so that the rule builder need not
	// check for "any".
	if len(e.Protocol) == 1 && e.Protocol[0] == "any" {
		e.Protocol = nil
	}
	if e.Family == "" {
		has4, has6 := families(e.Local, e.Remote, e.RemoteExcept)
		if m, err := nftmatch.Parse(e.Match); e.Match != "" && err == nil && !has4 && !has6 {
			// No addresses: the match's selectors say the family.
			fams := m.Families()
			has4, has6 = slices.Contains(fams, nftmatch.IPv4), slices.Contains(fams, nftmatch.IPv6)
		}
		switch {
		case has4 && !has6:
			e.Family = "ipv4"
		case has6 && !has4:
			e.Family = "ipv6"
		default:
			e.Family = "both"
		}
	}
}

// families reports which families the prefixes of the lists are of.
func families(lists ...[]netip.Prefix) (has4, has6 bool) {
	for _, list := range lists {
		for _, p := range list {
			if p.Addr().Is4() {
				has4 = true
			} else if p.IsValid() {
				has6 = true
			}
		}
	}
	return has4, has6
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
	if f.Count != "accepted" && f.Count != "all" {
		errs.add(pos.count, "count", "%s is not a count; use accepted or all", quote(f.Count))
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
	validateFlows(f, pos, errs)
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

// ref says where an entry's values were written, for messages.
type ref struct {
	line int       // where the entry starts
	p    *entryPos // nil: everything is at line
	name string    // accounting[N], addresses[N]
}

// entryRef is an accounting entry with where it was written.
type entryRef struct {
	ref
	e *Entry
}

// field is the line and name of a key's value.
func (r ref) field(key string) (int, string) {
	line := r.line
	if r.p != nil && r.p.values[key] > 0 {
		line = r.p.values[key]
	}
	return line, r.name + "." + key
}

// item is the line of item i of a list, its name, and its name within the
// entry ("local[1]"). A list written as a single value has no index.
func (r ref) item(key string, i int) (line int, field, short string) {
	line, idx := r.field(key)
	index := i
	if r.p != nil {
		if items := r.p.items[key]; i < len(items) {
			line, index = items[i].line, items[i].index
		}
		if r.p.scalar[key] {
			return line, idx, key
		}
	}
	short = fmt.Sprintf("%s[%d]", key, index)
	return line, r.name + "." + short, short
}

// itemError reports a problem of item i of a list.
func (r ref) itemError(errs *errList, key string, i int, format string, args ...any) {
	line, field, _ := r.item(key, i)
	errs.add(line, field, format, args...)
}

// short is the name of item i of a list within the entry.
func (r ref) short(key string, i int) string {
	_, _, short := r.item(key, i)
	return short
}

// countRules adds an entry's rules to those of the entries before it, and
// reports the entry that takes the table past maxFileRules.
func (r ref) countRules(before, rules int, errs *errList) int {
	if before <= maxFileRules && before+rules > maxFileRules {
		errs.add(r.line, r.name, "with this entry the table has %d rules, at most %d are allowed", before+rules, maxFileRules)
	}
	return before + rules
}

// explicit reports whether the file set key (a File without positions
// counts as setting everything).
func (r ref) explicit(key string) bool { return r.p == nil || r.p.values[key] > 0 }

// missing reports whether the file left out a key: a key written with an
// empty value or none is the decoder's to report.
func (r ref) missing(key string) bool { return r.p == nil || r.p.values[key] == 0 }

// validate checks an entry, and returns the rules it expands to: 0 when
// it is not valid or counted from flows.
func (r entryRef) validate(errs *errList) (rules int) {
	e := r.e
	if e.Tag == "" {
		if r.missing("tag") {
			line, field := r.field("tag")
			errs.add(line, field, "missing; every entry needs a tag")
		}
	} else if msg := checkTag(e.Tag); msg != "" {
		line, field := r.field("tag")
		errs.add(line, field, "%s", msg)
	}
	if msg := checkDescription(e.Description); msg != "" {
		line, field := r.field("description")
		errs.add(line, field, "%s", msg)
	} else if n := len(commentPrefix(e.Tag)) + len(e.Description); e.Description != "" && n > maxCommentLen {
		// Longer comments load into the kernel, but nft refuses them, and
		// "nft list ruleset > f; nft -f f" must keep working.
		line, field := r.field("description")
		errs.add(line, field, "with the tag, the rule comment is %d bytes and nft allows %d: shorten the description to %d bytes",
			n, maxCommentLen, maxCommentLen-len(commentPrefix(e.Tag)))
	}
	directionOK := true
	switch e.Direction {
	case "in", "out", "both":
	default:
		directionOK = false
		line, field := r.field("direction")
		errs.add(line, field, "%s is not a direction; use in, out or both", quote(e.Direction))
	}
	flows := e.Source == SourceFlows
	if checkSource(r.ref, e.Source, errs) && flows {
		r.checkFlowsEntry(errs)
	}
	familyOK := true
	switch e.Family {
	case "ipv4", "ipv6", "both":
	default:
		familyOK = false
		line, field := r.field("family")
		errs.add(line, field, "%s is not a family; use ipv4, ipv6 or both", quote(e.Family))
	}
	hooksOK := flows || r.checkHooks(errs)
	prefixesOK := r.checkPrefixes("local", e.Local, errs)
	prefixesOK = r.checkPrefixes("remote", e.Remote, errs) && prefixesOK
	prefixesOK = r.checkPrefixes("remote_except", e.RemoteExcept, errs) && prefixesOK
	if len(e.RemoteExcept) > maxExcept {
		line, field := r.field("remote_except")
		errs.add(line, field, "%d items, at most %d are allowed: each is a match in every rule of the entry, and the kernel allows 128 expressions a rule", len(e.RemoteExcept), maxExcept)
	}
	protocolOK := r.checkProtocols(errs)
	r.checkPorts(errs)
	if e.Interface != "" {
		if msg := checkInterface(e.Interface); msg != "" {
			line, field := r.field("interface")
			errs.add(line, field, "%s", msg)
		}
	}
	matchOK := true
	if e.Match != "" && !flows {
		if _, err := nftmatch.Parse(e.Match); err != nil {
			matchOK = false
			line, field := r.field("match")
			errs.add(line, field, "%v (match takes a subset of nft: %s)", err, nftmatch.DocRef)
		}
	}

	// The checks across fields would only repeat a broken value's error.
	if r.p != nil && r.p.broken {
		return 0
	}
	if hooksOK && directionOK && !flows {
		r.checkHookDirections(errs)
	}
	if familyOK && prefixesOK {
		r.checkFamily(errs)
	}
	if familyOK && protocolOK {
		r.checkICMP(errs)
	}
	if protocolOK {
		r.checkPortsProtocol(errs)
	}
	if familyOK && matchOK && e.Match != "" && !flows {
		r.checkMatchFamily(errs)
	}
	if flows {
		return 0 // a flows entry makes no rules: its lists are matched as they are
	}
	return r.checkSize(errs) * len(e.Directions())
}

// checkMatchFamily: a match with IPv4 or IPv6 selectors only (ip dscp,
// icmpv6 type) has no rule in the other family.
func (r entryRef) checkMatchFamily(errs *errList) {
	m, _ := nftmatch.Parse(r.e.Match)
	fams := m.Families()
	for _, f := range r.e.Families() {
		want := map[string]string{"ip": nftmatch.IPv4, "ip6": nftmatch.IPv6}[f]
		if !slices.Contains(fams, want) {
			line, field := r.field("match")
			if r.explicit("family") {
				errs.add(line, field, "matches %s packets only, but family is %s", familyWord(fams[0]), r.e.Family)
			} else {
				errs.add(line, field, "matches %s packets only, but the addresses are %s", familyWord(fams[0]), familyWord(want))
			}
			return
		}
	}
}

// checkTag returns what is wrong with a tag, or "". A tag is what the
// exporter writes into rule comments as =TAG_in= and =TAG_out=, so it must
// parse there, without a direction suffix of its own.
func checkTag(t string) string {
	for i := 0; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		if !(r < utf8.RuneSelf && (isLetter(byte(r)) || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')) {
			return fmt.Sprintf("%s has the character %q; a tag is letters, digits, '_', '.' and '-'", quote(t), r)
		}
		i += size
	}
	// Suffixes count in any case, as tag.Parse reads them.
	for _, s := range []struct{ suffix, dir string }{{"_in", "in"}, {"_down", "in"}, {"_out", "out"}, {"_up", "out"}} {
		if n := len(t) - len(s.suffix); n >= 0 && strings.EqualFold(t[n:], s.suffix) {
			return fmt.Sprintf("%s ends in %s, a direction suffix, which the exporter adds; use direction: %s instead", quote(t), t[n:], s.dir)
		}
	}
	if len(t) > maxTagLen {
		return fmt.Sprintf("%s is %d characters long, at most %d are allowed (the exporter adds _in or _out)", quote(t), len(t), maxTagLen)
	}
	if p, err := tag.Parse("=" + t + "="); err != nil || p.Name != t || p.Direction != tag.None {
		return fmt.Sprintf("%s is not a valid tag", quote(t))
	}
	return ""
}

// maxCommentLen is the longest rule comment nft accepts.
const maxCommentLen = 128

// commentPrefix is the longest tag token the rule builder writes before
// the description.
func commentPrefix(tagName string) string { return "=" + tagName + "_out= " }

// checkDescription returns what is wrong with a description, or "". It
// goes into an nft rule comment, which is one line between double quotes.
func checkDescription(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if strings.ContainsRune(s, '"') {
		return fmt.Sprintf("%s has a '\"', which an nft comment cannot hold", quote(s))
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("%s has the control character %q; a description is one line", quote(s), r)
		}
	}
	if len(s) > maxDescriptionLen {
		return fmt.Sprintf("%d bytes long, at most %d are allowed", len(s), maxDescriptionLen)
	}
	return ""
}

// checkInterface returns what is wrong with an interface name, or "". The
// kernel's rules (dev_valid_name) apply, and a final '*' is a wildcard.
func checkInterface(s string) string {
	name := strings.TrimSuffix(s, "*")
	switch {
	case len(s) > maxInterfaceLen:
		return fmt.Sprintf("%s is %d characters long, at most %d are allowed", quote(s), len(s), maxInterfaceLen)
	case name == "":
		return `"*" alone matches every interface; leave interface out`
	case name == "." || name == "..":
		return fmt.Sprintf("%s is not an interface name", quote(s))
	}
	for _, r := range name {
		switch {
		case r == '*':
			return fmt.Sprintf("%s has a '*' before its end; '*' is a wildcard only at the end", quote(s))
		case r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError:
			return fmt.Sprintf("%s has the character %q, which an interface name cannot hold", quote(s), r)
		}
	}
	return ""
}

var hooks = []string{"input", "output", "forward"}

// checkHooks reports whether the hooks are valid on their own.
func (r entryRef) checkHooks(errs *errList) bool {
	return checkHookList(r.ref, r.e.Hooks, "empty list; leave hooks out for [input, output]", errs)
}

// checkHookList reports whether a list of hooks is valid on its own.
func checkHookList(r ref, list []string, emptyMsg string, errs *errList) bool {
	if len(list) == 0 {
		line, field := r.field("hooks")
		errs.add(line, field, "%s", emptyMsg)
		return false
	}
	ok := true
	seen := make(map[string]int)
	for i, h := range list {
		if first, twice := seen[h]; twice {
			r.itemError(errs, "hooks", i, "%s is listed twice, also as %s", h, r.short("hooks", first))
			ok = false
		} else if !contains(hooks, h) {
			r.itemError(errs, "hooks", i, "%s is not a hook; use input, output or forward", quote(h))
			ok = false
		}
		seen[h] = i
	}
	return ok
}

// checkHookDirections: traffic in (to the local side) passes input, traffic
// out passes output, and forward carries both. A direction that none of the
// hooks carries would count nothing.
func (r entryRef) checkHookDirections(errs *errList) {
	e := r.e
	for _, d := range e.Directions() {
		hook, other := "input", tag.Out
		if d == tag.Out {
			hook, other = "output", tag.In
		}
		if contains(e.Hooks, hook) || contains(e.Hooks, "forward") {
			continue
		}
		line, field := r.field("hooks")
		msg := fmt.Sprintf("direction %s is counted at %s or forward, and hooks has neither", d, hook)
		if e.Direction == "both" {
			msg += "; set direction: " + string(other)
		}
		errs.add(line, field, "%s", msg)
	}
	// At forward both directions pass the same hook: only the local side
	// (an address or an interface) tells traffic in from traffic out.
	if contains(e.Hooks, "forward") && e.Direction == "both" && len(e.Local) == 0 && e.Interface == "" {
		line, field := r.field("hooks")
		errs.add(line, field, "at forward, direction both needs local or interface to tell traffic in from traffic out; set one, or set direction")
	}
}

var protocols = []string{"tcp", "udp", "icmp", "icmpv6", "any"}

// checkProtocols reports whether the protocols are valid on their own.
func (r entryRef) checkProtocols(errs *errList) bool {
	ok := true
	seen := make(map[string]int)
	for i, p := range r.e.Protocol {
		first, twice := seen[p]
		switch {
		case twice:
			r.itemError(errs, "protocol", i, "%s is listed twice, also as %s", p, r.short("protocol", first))
		case !contains(protocols, p):
			r.itemError(errs, "protocol", i, "%s is not a protocol; use tcp, udp, icmp, icmpv6 or any", quote(p))
		case p == "any" && len(r.e.Protocol) > 1:
			r.itemError(errs, "protocol", i, "any cannot be combined with other protocols")
		default:
			seen[p] = i
			continue
		}
		seen[p] = i
		ok = false
	}
	return ok
}

// checkICMP: each ICMP has its family. An entry of both families may list
// icmp and icmpv6 (or icmp and tcp): each counts in its own family, the
// rule builder leaves it out of the other.
func (r entryRef) checkICMP(errs *errList) {
	e := r.e
	for i, p := range e.Protocol {
		var want, ipv string
		switch p {
		case "icmp":
			want, ipv = "ipv4", "IPv4"
		case "icmpv6":
			want, ipv = "ipv6", "IPv6"
		default:
			continue
		}
		if e.Family == want || e.Family == "both" && r.otherFamilyCounted(p) {
			continue
		}
		line, field, _ := r.item("protocol", i)
		switch {
		case r.explicit("family") && e.Family == "both":
			errs.add(line, field, "%s is %s only, but family is both; set family: %s", p, ipv, want)
		case r.explicit("family"):
			errs.add(line, field, "%s is %s only, but family is %s", p, ipv, e.Family)
		case e.Family == "both":
			errs.add(line, field, "%s is %s only, but the entry counts IPv4 and IPv6; set family: %s", p, ipv, want)
		default:
			errs.add(line, field, "%s is %s only, but the addresses are %s", p, ipv, familyWord(e.Family))
		}
	}
}

// otherFamilyCounted tells whether the protocol list counts something in
// the family that the ICMP p is not of, so that an entry of both families
// has rules in each.
func (r entryRef) otherFamilyCounted(p string) bool {
	// Any other protocol (tcp, udp, the other ICMP) is of that family.
	return slices.ContainsFunc(r.e.Protocol, func(q string) bool { return q != p })
}

func familyWord(f string) string {
	if f == "ipv4" {
		return "IPv4"
	}
	return "IPv6"
}

// checkPrefixes reports whether every prefix of a list is valid. It rejects
// overlaps: a packet in two of them would be counted twice.
func (r ref) checkPrefixes(key string, list []netip.Prefix, errs *errList) bool {
	ok := true
	var spans []span[netip.Addr]
	for i, p := range list {
		switch {
		case !p.IsValid() || p.Addr().Zone() != "":
			r.itemError(errs, key, i, "not a valid address or network")
		case p != p.Masked():
			r.itemError(errs, key, i, "%s: host bits set, did you mean %s?", p, fmtPrefix(p.Masked()))
		case p.Addr().Is4In6():
			r.itemError(errs, key, i, "%s is IPv4-mapped; write %s", fmtPrefix(p), fmtPrefix(netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)))
		default:
			spans = append(spans, span[netip.Addr]{p.Addr(), lastAddr(p), i})
			continue
		}
		ok = false
	}
	for _, o := range overlaps(spans, netip.Addr.Compare) {
		a, b := fmtPrefix(list[o.later]), fmtPrefix(list[o.earlier])
		if a == b {
			r.itemError(errs, key, o.later, "%s is listed twice, also as %s", a, r.short(key, o.earlier))
		} else {
			r.itemError(errs, key, o.later, "%s overlaps %s at %s", a, b, r.short(key, o.earlier))
		}
		ok = false
	}
	return ok
}

// fmtPrefix writes a single address as an address, as the file may.
func fmtPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	hostBits := p.Addr().BitLen() - p.Bits()
	for i := 15; hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

func (r entryRef) checkPorts(errs *errList) {
	var spans []span[uint16]
	for i, p := range r.e.Ports {
		switch {
		case p.Low == 0 && p.High == 0:
			r.itemError(errs, "ports", i, "0 is out of range 1-65535")
		case p.Low == 0:
			r.itemError(errs, "ports", i, "%s: 0 is out of range 1-65535", p)
		case p.Low > p.High:
			r.itemError(errs, "ports", i, "%d-%d: the low port is above the high one; did you mean %d-%d?", p.Low, p.High, p.High, p.Low)
		default:
			spans = append(spans, span[uint16]{p.Low, p.High, i})
		}
	}
	for _, o := range overlaps(spans, cmp.Compare[uint16]) {
		a, b := r.e.Ports[o.later], r.e.Ports[o.earlier]
		if a == b {
			r.itemError(errs, "ports", o.later, "%s is listed twice, also as %s", a, r.short("ports", o.earlier))
		} else {
			r.itemError(errs, "ports", o.later, "%s overlaps %s at %s", a, b, r.short("ports", o.earlier))
		}
	}
}

// checkPortsProtocol: ports are a tcp or udp header field.
func (r entryRef) checkPortsProtocol(errs *errList) {
	e := r.e
	if len(e.Ports) == 0 {
		return
	}
	line, field := r.field("ports")
	if len(e.Protocol) == 0 || contains(e.Protocol, "any") {
		errs.add(line, field, "ports need protocol tcp or udp")
		return
	}
	for _, p := range e.Protocol {
		if p != "tcp" && p != "udp" {
			errs.add(line, field, "ports need protocol tcp or udp; %s has no ports", p)
			return
		}
	}
}

// checkFamily: the addresses must fit the family. Every list names
// addresses of each family the entry counts; otherwise that family's rules
// could match no packet.
func (r entryRef) checkFamily(errs *errList) {
	e := r.e
	lists := []struct {
		key  string
		list []netip.Prefix
	}{{"local", e.Local}, {"remote", e.Remote}, {"remote_except", e.RemoteExcept}}
	if e.Family != "both" {
		want4 := e.Family == "ipv4"
		for _, l := range lists {
			for i, p := range l.list {
				if p.Addr().Is4() == want4 {
					continue
				}
				what := "address"
				if !p.IsSingleIP() {
					what = "network"
				}
				ipv := "IPv6"
				if p.Addr().Is4() {
					ipv = "IPv4"
				}
				line, field, _ := r.item(l.key, i)
				errs.add(line, field, "%s is an %s %s, but family is %s", fmtPrefix(p), ipv, what, e.Family)
			}
		}
		return
	}
	for _, l := range lists[:2] {
		has4, has6 := families(l.list)
		if has4 == has6 { // both, or an empty list (any address)
			continue
		}
		only, missing, set := "IPv4", "IPv6", "ipv4"
		if has6 {
			only, missing, set = "IPv6", "IPv4", "ipv6"
		}
		line, field := r.field(l.key)
		if r.explicit("family") {
			errs.add(line, field, "only %s addresses, but family is both; set family: %s", only, set)
			continue
		}
		for _, o := range lists {
			if o4, o6 := families(o.list); o.key != l.key && (o4 && missing == "IPv4" || o6 && missing == "IPv6") {
				errs.add(line, field, "only %s addresses, but %s has %s ones, and no %s packet matches %s; split the entry by family", only, o.key, missing, missing, l.key)
				break
			}
		}
	}
}

// checkSize bounds the rules an entry expands to: the rule builder writes
// one for each combination of the items of its lists. It returns how many
// that is per direction, or 0 when it is too many.
func (r entryRef) checkSize(errs *errList) int {
	e := r.e
	counts := []int{max(1, len(e.Local)), max(1, len(e.Remote)), max(1, len(e.Protocol)), max(1, len(e.Ports)), 1}
	if m, err := nftmatch.Parse(e.Match); e.Match != "" && err == nil {
		// A set in the match makes a rule per element.
		for _, f := range m.Families() {
			if alts, err := m.Alternatives(f); err == nil {
				counts[4] = max(counts[4], len(alts))
			}
		}
	}
	n, exact := 1, true
	for _, c := range counts {
		if c > maxRules {
			exact = false // the product could overflow
		} else {
			n *= c
		}
	}
	if n <= maxRules && exact {
		return n
	}
	total := "more than " + strconv.Itoa(maxRules)
	if exact {
		total = strconv.Itoa(n)
	}
	alts := ""
	if counts[4] > 1 {
		alts = fmt.Sprintf(" × %d match alternatives", counts[4])
	}
	errs.add(e.Line, r.name, "expands to %s rules per direction and hook (%d local × %d remote × %d protocols × %d ports%s), at most %d are allowed; split it",
		total, counts[0], counts[1], counts[2], counts[3], alts, maxRules)
	return 0
}

// claim rejects a tag that an earlier entry counts in the same direction:
// their series would be summed, which is hardly meant.
func (r entryRef) claim(claims map[string]map[tag.Direction]int, tagSources map[string]sourceClaim, errs *errList) {
	e := r.e
	if e.Tag == "" || checkTag(e.Tag) != "" || !contains([]string{"in", "out", "both"}, e.Direction) {
		return
	}
	// A tag counted by the kernel in one direction and from flows in the
	// other is two tags in one; one of them is likely counted twice.
	if c, ok := tagSources[e.Tag]; ok && c.source != e.Source && contains(sources, e.Source) {
		line, field := r.field("tag")
		errs.add(line, field, "%s has source %s at line %d; a tag has one source", e.Tag, c.source, c.line)
		return
	} else if !ok {
		tagSources[e.Tag] = sourceClaim{e.Source, e.Line}
	}
	if claims[e.Tag] == nil {
		claims[e.Tag] = make(map[tag.Direction]int)
	}
	var clash []string
	for _, d := range e.Directions() {
		line, ok := claims[e.Tag][d]
		if !ok {
			claims[e.Tag][d] = e.Line
			continue
		}
		clash = append(clash, fmt.Sprintf("direction %s at line %d", d, line))
	}
	if len(clash) == 0 {
		return
	}
	line, field := r.field("tag")
	msg := strings.Join(clash, " and ")
	if len(clash) == 2 && claims[e.Tag][tag.In] == claims[e.Tag][tag.Out] {
		msg = fmt.Sprintf("directions in and out at line %d", claims[e.Tag][tag.In])
	}
	errs.add(line, field, "%s already counts %s", e.Tag, msg)
}

// sourceClaim is the source of a tag's first entry.
type sourceClaim struct {
	source string
	line   int
}

// span is an inclusive range of ordered values, item idx of a list.
type span[T any] struct {
	low, high T
	idx       int
}

// overlap is a pair of overlapping items, as written in the file.
type overlap struct{ earlier, later int }

// overlaps finds the items that overlap an item written before or after
// them, each later one reported once. Sorting first keeps it O(n log n) on
// long lists.
func overlaps[T any](spans []span[T], compare func(a, b T) int) []overlap {
	slices.SortStableFunc(spans, func(a, b span[T]) int {
		if c := compare(a.low, b.low); c != 0 {
			return c
		}
		return compare(b.high, a.high) // the wider first
	})
	var out []overlap
	reported := make(map[int]bool)
	for i, cover := 1, 0; i < len(spans); i++ {
		s, c := spans[i], spans[cover]
		if compare(s.low, c.high) <= 0 {
			o := overlap{min(s.idx, c.idx), max(s.idx, c.idx)}
			if !reported[o.later] {
				reported[o.later] = true
				out = append(out, o)
			}
		}
		if compare(s.high, c.high) > 0 {
			cover = i
		}
	}
	slices.SortFunc(out, func(a, b overlap) int { return cmp.Compare(a.later, b.later) })
	return out
}
