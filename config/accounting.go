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

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/nftmatch"
	"github.com/ipacct/ipacct_exporter/tag"
	"go.yaml.in/yaml/v3"
)

const (
	maxInterfaceLen = 15 // IFNAMSIZ less the NUL
	// maxExcept keeps a rule within the kernel's 128 expressions
	// (NFT_RULE_MAXEXPRS): each remote_except item is three, the other
	// matches and the counter at most 15.
	maxExcept = 32
)

// Directions are the directions the entry counts: tag.In, tag.Out, or both.
func (e Entry) Directions() []tag.Direction { return e.Direction.Tags() }

// Families are the address families the entry counts: IPv4, IPv6, or both,
// in that order.
func (e Entry) Families() []family.Address { return e.Family.Addresses() }

// String writes the range as rules.yaml does: "443" or "8000-8080".
func (r PortRange) String() string {
	if r.Low == r.High {
		return strconv.Itoa(int(r.Low))
	}
	return strconv.Itoa(int(r.Low)) + "-" + strconv.Itoa(int(r.High))
}

var entryKeys = []string{"tag", "description", "source", "direction", "family", "hooks", "local", "remote", "remote_except", "protocol", "ports", "interface", "match"}

func (d *decoder) entry(n *yaml.Node, name string) (Entry, entryPos) {
	e := Entry{Line: n.Line}
	p := d.entryFields(n, name, entryKeys, func(key, field string, val *yaml.Node, p *entryPos) {
		str := func(dst *string, emptyOK bool) {
			*dst, _, _ = d.str(val, field, emptyOK)
		}
		// The words are validate's to check.
		switch key {
		case "tag":
			str(&e.Tag, false)
		case "description":
			str(&e.Description, true)
		case "source":
			e.Source, _ = decodeWord[Source](d, val, field)
		case "direction":
			e.Direction, _ = decodeWord[Direction](d, val, field)
		case "family":
			e.Family, _ = decodeWord[Family](d, val, field)
		case "interface":
			str(&e.Interface, false)
		case "match":
			str(&e.Match, false)
		case "hooks":
			e.Hooks = decodeItems(d, val, key, field, p, false, 0, "", word[Hook])
		case "protocol":
			e.Protocol = decodeItems(d, val, key, field, p, true, maxRules,
				"leave protocol out, or write any", word[Protocol])
		case "local", "remote", "remote_except":
			max, advice := maxRules, "leave "+key+" out to match any address"
			if key == "remote_except" {
				max, advice = 0, ""
			}
			list := decodeItems(d, val, key, field, p, false, max, advice, parsePrefix)
			switch key {
			case "local":
				e.Local = list
			case "remote":
				e.Remote = list
			default:
				e.RemoteExcept = list
			}
		case "ports":
			e.Ports = decodeItems(d, val, key, field, p, false, maxRules, "leave ports out to count every port", parsePort)
		}
	})
	return e, p
}

// parsePort parses a port ("443") or an inclusive range ("8000-8080").
// Port 0 and reversed ranges are validate's concern.
func parsePort(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	low, err := portNumber(lo, s)
	if err != nil {
		return PortRange{}, err
	}
	high, err := portNumber(hi, s)
	if err != nil {
		return PortRange{}, err
	}
	return PortRange{Low: low, High: high}, nil
}

func portNumber(t, s string) (uint16, error) {
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("%s is not a port or a range of ports such as 8000-8080", quote(s))
	}
	v, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		if len(t) > 10 {
			t = t[:10] + "…"
		}
		return 0, fmt.Errorf("%s is out of range 1-65535", t)
	}
	return uint16(v), nil
}

func (e *Entry) setDefaults() {
	if e.Source == "" {
		e.Source = SourceKernel
	}
	if e.Direction == "" {
		e.Direction = DirectionBoth
	}
	if e.Hooks == nil && e.Source != SourceFlow {
		e.Hooks = []Hook{HookInput, HookOutput}
	}
	// An empty list means any protocol, so that the rule builder need not
	// check for "any".
	if len(e.Protocol) == 1 && e.Protocol[0] == ProtocolAny {
		e.Protocol = nil
	}
	if e.Family == "" {
		has4, has6 := addressFamilies(e.Local, e.Remote, e.RemoteExcept)
		if m, err := nftmatch.Parse(e.Match); e.Match != "" && err == nil && !has4 && !has6 {
			// No addresses: the match's selectors say the family.
			fams := m.Families()
			has4, has6 = slices.Contains(fams, family.IPv4), slices.Contains(fams, family.IPv6)
		}
		switch {
		case has4 && !has6:
			e.Family = FamilyIPv4
		case has6 && !has4:
			e.Family = FamilyIPv6
		default:
			e.Family = FamilyBoth
		}
	}
}

// entryRef is an accounting entry with where it was written.
type entryRef struct {
	ref
	e *Entry
}

// validate checks an entry, and returns the rules it expands to: 0 when
// it is not valid or counted from flow records.
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
	checkEntryDescription(r.ref, e.Tag, e.Description, "rule", errs)
	directionOK := checkWord(r.ref, "direction", e.Direction, directions, errs)
	flow := e.Source == SourceFlow
	if checkWord(r.ref, "source", e.Source, sources, errs) && flow {
		r.checkFlowEntry(errs)
	}
	familyOK := checkWord(r.ref, "family", e.Family, families, errs)
	hooksOK := flow || r.checkHooks(errs)
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
	if e.Match != "" && !flow {
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
	if hooksOK && directionOK && !flow {
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
	if familyOK && matchOK && e.Match != "" && !flow {
		r.checkMatchFamily(errs)
	}
	if flow {
		return 0 // a flow entry makes no rules: its lists are matched as they are
	}
	return r.checkSize(errs) * len(e.Directions())
}

// checkFlowEntry rejects what a flow accounting entry cannot match: a
// flow record carries addresses, ports, protocol and interface indexes,
// not the packet an nft match reads, nor a hook or an interface name.
func (r entryRef) checkFlowEntry(errs *errList) {
	e := r.e
	if e.Hooks != nil {
		line, field := r.field("hooks")
		errs.add(line, field, "hooks are where the kernel counts, and a flow entry has none; leave hooks out")
	}
	if e.Interface != "" {
		line, field := r.field("interface")
		errs.add(line, field, "flow records name interfaces by index, not by name; filter them per router under flow.routers")
	}
	if e.Match != "" {
		line, field := r.field("match")
		errs.add(line, field, "an nft match reads packets in the kernel; a flow entry matches local, remote, protocol and ports only")
	}
	if len(e.Local) == 0 && r.missing("local") {
		line, field := r.field("local")
		errs.add(line, field, "missing; a flow entry needs local to tell traffic in (to it) from traffic out (from it)")
	}
}

// checkMatchFamily: a match with IPv4 or IPv6 selectors only (ip dscp,
// icmpv6 type) has no rule in the other family.
func (r entryRef) checkMatchFamily(errs *errList) {
	m, _ := nftmatch.Parse(r.e.Match)
	fams := m.Families()
	for _, want := range r.e.Families() {
		if !slices.Contains(fams, want) {
			line, field := r.field("match")
			if r.explicit("family") {
				errs.add(line, field, "matches %s packets only, but family is %s", fams[0].Name(), r.e.Family)
			} else {
				errs.add(line, field, "matches %s packets only, but the addresses are %s", fams[0].Name(), want.Name())
			}
			return
		}
	}
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

// checkHooks reports whether the hooks are valid on their own.
func (r entryRef) checkHooks(errs *errList) bool {
	return checkHookList(r.ref, r.e.Hooks, "empty list; leave hooks out for [input, output]", errs)
}

// checkHookDirections: traffic in (to the local side) passes input, traffic
// out passes output, and forward carries both. A direction that none of the
// hooks carries would count nothing.
func (r entryRef) checkHookDirections(errs *errList) {
	e := r.e
	for _, d := range e.Directions() {
		if slices.ContainsFunc(e.Hooks, func(h Hook) bool { return h.Sees(d) }) {
			continue
		}
		hook, other := HookInput, tag.Out
		if d == tag.Out {
			hook, other = HookOutput, tag.In
		}
		line, field := r.field("hooks")
		msg := fmt.Sprintf("direction %s is counted at %s or forward, and hooks has neither", d, hook)
		if e.Direction == DirectionBoth {
			msg += "; set direction: " + string(other)
		}
		errs.add(line, field, "%s", msg)
	}
	// At forward both directions pass the same hook: only the local side
	// (an address or an interface) tells traffic in from traffic out.
	if slices.Contains(e.Hooks, HookForward) && e.Direction == DirectionBoth && len(e.Local) == 0 && e.Interface == "" {
		line, field := r.field("hooks")
		errs.add(line, field, "at forward, direction both needs local or interface to tell traffic in from traffic out; set one, or set direction")
	}
}

// checkProtocols reports whether the protocols are valid on their own.
func (r entryRef) checkProtocols(errs *errList) bool {
	ok := true
	seen := make(map[Protocol]int)
	for i, p := range r.e.Protocol {
		first, twice := seen[p]
		switch {
		case twice:
			r.itemError(errs, "protocol", i, "%s is listed twice, also as %s", p, r.short("protocol", first))
		case !slices.Contains(protocols, p):
			r.itemError(errs, "protocol", i, "%s", notOneOf(p, "protocol", protocols))
		case p == ProtocolAny && len(r.e.Protocol) > 1:
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
		only, ok := p.Family()
		if !ok {
			continue
		}
		want, ipv := Family(only), only.Name()
		if e.Family == want || e.Family == FamilyBoth && r.otherFamilyCounted(p) {
			continue
		}
		line, field, _ := r.item("protocol", i)
		switch {
		case r.explicit("family") && e.Family == FamilyBoth:
			errs.add(line, field, "%s is %s only, but family is both; set family: %s", p, ipv, want)
		case r.explicit("family"):
			errs.add(line, field, "%s is %s only, but family is %s", p, ipv, e.Family)
		case e.Family == FamilyBoth:
			errs.add(line, field, "%s is %s only, but the entry counts IPv4 and IPv6; set family: %s", p, ipv, want)
		default:
			errs.add(line, field, "%s is %s only, but the addresses are %s", p, ipv, e.Families()[0].Name())
		}
	}
}

// otherFamilyCounted tells whether the protocol list counts something in
// the family that the ICMP p is not of, so that an entry of both families
// has rules in each.
func (r entryRef) otherFamilyCounted(p Protocol) bool {
	// Any other protocol (tcp, udp, the other ICMP) is of that family.
	return slices.ContainsFunc(r.e.Protocol, func(q Protocol) bool { return q != p })
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
	if len(e.Protocol) == 0 || slices.Contains(e.Protocol, ProtocolAny) {
		errs.add(line, field, "ports need protocol tcp or udp")
		return
	}
	for _, p := range e.Protocol {
		if p != ProtocolTCP && p != ProtocolUDP {
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
	if e.Family != FamilyBoth {
		want4 := e.Family == FamilyIPv4
		for _, l := range lists {
			for i, p := range l.list {
				if p.Addr().Is4() == want4 {
					continue
				}
				what := "address"
				if !p.IsSingleIP() {
					what = "network"
				}
				line, field, _ := r.item(l.key, i)
				errs.add(line, field, "%s is an %s %s, but family is %s", fmtPrefix(p), family.Of(p.Addr()).Name(), what, e.Family)
			}
		}
		return
	}
	for _, l := range lists[:2] {
		has4, has6 := addressFamilies(l.list)
		if has4 == has6 { // both, or an empty list (any address)
			continue
		}
		only, missing := family.IPv4, family.IPv6
		if has6 {
			only, missing = family.IPv6, family.IPv4
		}
		line, field := r.field(l.key)
		if r.explicit("family") {
			errs.add(line, field, "only %s addresses, but family is both; set family: %s", only.Name(), only)
			continue
		}
		for _, o := range lists {
			if o4, o6 := addressFamilies(o.list); o.key != l.key && (o4 && missing == family.IPv4 || o6 && missing == family.IPv6) {
				errs.add(line, field, "only %s addresses, but %s has %s ones, and no %s packet matches %s; split the entry by family", only.Name(), o.key, missing.Name(), missing.Name(), l.key)
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
	if e.Tag == "" || checkTag(e.Tag) != "" || !slices.Contains(directions, e.Direction) {
		return
	}
	// A tag counted by the kernel in one direction and from flow records
	// in the other is two tags in one; one of them is likely counted twice.
	if c, ok := tagSources[e.Tag]; ok && c.source != e.Source && slices.Contains(sources, e.Source) {
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
	source Source
	line   int
}
