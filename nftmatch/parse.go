package nftmatch

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ipacct/ipacct_exporter/family"
)

// Limits that keep a match's rules few and small.
const (
	// MaxAlternatives is how many rules one match may expand to: sets
	// after == multiply.
	MaxAlternatives = 1000
	// MaxExprs is how many expressions one alternative may have. The kernel
	// takes at most 128 per rule (NFT_RULE_MAXEXPRS); the rest is left for
	// what the caller puts around the match (meta nfproto, addresses,
	// ports, the counter).
	MaxExprs = 64
	// maxText bounds the input, so a hostile file cannot make Parse slow.
	maxText = 16 << 10
)

// op is a relation's operator.
type op int

const (
	opImplicit op = iota // no operator: equality, or "any of these bits" for a bit mask
	opEq
	opNeq
	opLt
	opGt
	opLe
	opGe
	opNone // "!" before bit mask values: none of these bits
)

var opText = map[op]string{opEq: "==", opNeq: "!=", opLt: "<", opGt: ">", opLe: "<=", opGe: ">=", opNone: "!"}

var opWords = map[string]op{
	"==": opEq, "!=": opNeq, "<": opLt, ">": opGt, "<=": opLe, ">=": opGe,
	"eq": opEq, "ne": opNeq, "lt": opLt, "gt": opGt, "le": opLe, "ge": opGe,
}

// elem is one value on the right of a relation: a number, a range, an
// address, prefix or address range, or an interface name.
type elem struct {
	pos    int
	lo, hi uint64 // numbers (dscp: the code point, not shifted); lo == hi unless rng
	rng    bool
	a, b   netip.Addr // addresses; b for a range
	bits   int        // prefix length, or -1
	name   string     // interface name, without a trailing *
	wild   bool       // name ends in *: a prefix
}

// relation is SELECTOR [& MASK] [OP] VALUE.
type relation struct {
	pos     int
	sel     *selector
	op      op
	hasMask bool
	mask    uint64
	set     bool
	elems   []elem
}

// anyBits is the bit mask reading of "ct state established,related": a
// packet matches when any of the bits is set.
func (r *relation) anyBits() bool {
	return r.sel.kind == kindFlags && r.op == opImplicit && !r.hasMask && !r.set
}

// Match is a parsed, validated match expression.
type Match struct {
	rels     []*relation
	families []family.Address
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == s
}

// Parse parses and checks a match expression. Every error is an *Error.
func Parse(text string) (*Match, error) {
	if len(text) > maxText {
		return nil, errorf(maxText, "the match is longer than %d bytes", maxText)
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	m := &Match{}
	if p.peek().kind == tokEOF {
		return nil, errorf(0, "the match is empty")
	}
	for p.peek().kind != tokEOF {
		r, err := p.relation()
		if err != nil {
			return nil, err
		}
		m.rels = append(m.rels, r)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// check works out the families and compiles every alternative once, so
// that a match Parse accepts always compiles.
func (m *Match) check() error {
	fams := slices.Clone(family.Addresses)
	for _, r := range m.rels {
		if r.sel.family == "" {
			continue
		}
		if !slices.Contains(fams, r.sel.family) {
			for _, o := range m.rels {
				if o.sel.family != "" && o.sel.family != r.sel.family {
					return errorf(r.pos, "%s matches %s only, but %s at column %d matches %s only",
						r.sel.name, r.sel.family.Name(), o.sel.name, o.pos+1, o.sel.family.Name())
				}
			}
		}
		fams = []family.Address{r.sel.family}
	}
	m.families = fams
	n := 1
	for _, r := range m.rels {
		if r.set && r.op != opNeq {
			n *= len(r.elems)
			if n > MaxAlternatives {
				return errorf(r.pos, "the match expands to more than %d rules: each set after == multiplies the rules", MaxAlternatives)
			}
		}
	}
	_, err := m.alternatives(options{})
	return err
}

// relation parses SELECTOR [& MASK] [OP] VALUE.
func (p *parser) relation() (*relation, error) {
	sel, pos, err := p.selector()
	if err != nil {
		return nil, err
	}
	r := &relation{pos: pos, sel: sel}
	if t := p.peek(); t.kind == tokWord && t.text == "set" {
		return nil, errorf(t.pos, `"%s set" is a statement; a match only selects packets`, sel.name)
	}
	if p.isPunct("&") {
		if err := p.maskExpr(r); err != nil {
			return nil, err
		}
	}
	opPos := p.peek().pos
	switch t := p.peek(); {
	case t.kind == tokOp:
		r.op = opWords[p.next().text]
	case t.kind == tokWord && opWords[t.text] != opImplicit:
		r.op = opWords[p.next().text]
	case t.kind == tokPunct && t.text == "!":
		p.next()
		if sel.kind != kindFlags || r.hasMask {
			return nil, errorf(t.pos, `"!" alone applies to bit masks (ct state, ct status, tcp flags); write != for "not equal"`)
		}
		r.op = opNone
	}
	if p.isPunct("{") {
		if err := p.set(r); err != nil {
			return nil, err
		}
	} else {
		e, err := p.value(r, false)
		if err != nil {
			return nil, err
		}
		r.elems = []elem{e}
		if p.isPunct("/") {
			if sel.kind != kindFlags {
				return nil, errorf(p.peek().pos, `"/" after a %s value: nft reads that as a prefix length; write %s & MASK == VALUE`, sel.name, sel.name)
			}
			if err := p.slashMask(r); err != nil {
				return nil, err
			}
		}
	}
	if err := r.validate(opPos); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tokPunct && t.text == "," {
		return nil, errorf(t.pos, "several values need a set: %s { a, b }", sel.name)
	}
	return r, nil
}

// selector reads the selector words.
func (p *parser) selector() (*selector, int, error) {
	t := p.next()
	if t.kind != tokWord {
		if t.kind == tokEOF {
			return nil, t.pos, errorf(t.pos, "expected a selector, found the end of the match")
		}
		return nil, t.pos, errorf(t.pos, "unexpected %s: expected a selector such as tcp dport or ct state", t)
	}
	head := t.text
	if what, ok := statements[head]; ok {
		return nil, t.pos, errorf(t.pos, "%q is %s; a match only selects packets", head, what)
	}
	if fields, ok := selectors[head]; ok {
		f := p.peek()
		if f.kind != tokWord {
			return nil, t.pos, errorf(f.pos, "%s needs a field: expected one of %s", head, fieldList(head))
		}
		p.next()
		if s, ok := fields[f.text]; ok {
			return s, t.pos, nil
		}
		if slices.Contains(unsupportedFields[head], f.text) {
			return nil, t.pos, errorf(t.pos, "%q is not supported by the exporter's match subset; see %s", head+" "+f.text, DocRef)
		}
		return nil, t.pos, errorf(f.pos, "%q is not a %s field of the exporter's match subset; expected one of %s", f.text, head, fieldList(head))
	}
	if slices.Contains(unqualifiedMeta, head) {
		return selectors["meta"][head], t.pos, nil
	}
	if slices.Contains(unsupportedHeads, head) {
		return nil, t.pos, errorf(t.pos, "%q is not supported by the exporter's match subset; see %s", head, DocRef)
	}
	if c := head[0]; '0' <= c && c <= '9' {
		return nil, t.pos, errorf(t.pos, "unexpected %s: expected a selector; several values need a set: { a, b }", t)
	}
	return nil, t.pos, errorf(t.pos, "%q is not a selector of the exporter's match subset (meta, ct, ip, ip6, tcp, udp, th, icmp, icmpv6, iifname, oifname); see %s", head, DocRef)
}

func fieldList(head string) string {
	var names []string
	for f := range selectors[head] {
		names = append(names, f)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// maskExpr parses "& MASK": one value, or (a|b|...).
func (p *parser) maskExpr(r *relation) error {
	amp := p.next()
	if r.sel.kind != kindInt && r.sel.kind != kindFlags {
		return errorf(amp.pos, "%s takes no mask (&); masks apply to marks, numbers and bit masks", r.sel.name)
	}
	r.hasMask = true
	if !p.isPunct("(") {
		e, err := p.number(r.sel, p.next())
		if err != nil {
			return err
		}
		r.mask = e
		if p.isPunct("|") {
			return errorf(p.peek().pos, "a mask of several values needs parentheses: & (a|b)")
		}
		return nil
	}
	p.next()
	for {
		v, err := p.number(r.sel, p.next())
		if err != nil {
			return err
		}
		r.mask |= v
		t := p.next()
		if t.kind == tokPunct && t.text == ")" {
			return nil
		}
		if t.kind != tokPunct || t.text != "|" {
			return errorf(t.pos, "unexpected %s in the mask: expected | or )", t)
		}
	}
}

// slashMask parses nft's "VALUE / MASK" for bit masks: the bits of MASK
// must equal VALUE.
func (p *parser) slashMask(r *relation) error {
	slash := p.next()
	if r.hasMask {
		return errorf(slash.pos, "the relation already has a mask (&)")
	}
	if r.op != opImplicit && r.op != opEq && r.op != opNeq {
		return errorf(slash.pos, "VALUE / MASK takes == or !=")
	}
	e, err := p.value(r, false)
	if err != nil {
		return err
	}
	r.hasMask, r.mask = true, e.lo
	return nil
}

// set parses { a, b, ... }.
func (p *parser) set(r *relation) error {
	open := p.next()
	r.set = true
	for {
		if p.isPunct("}") {
			if len(r.elems) == 0 {
				return errorf(open.pos, "the set is empty")
			}
			p.next()
			return nil
		}
		e, err := p.value(r, true)
		if err != nil {
			return err
		}
		r.elems = append(r.elems, e)
		if len(r.elems) > MaxAlternatives {
			return errorf(e.pos, "the set has more than %d elements", MaxAlternatives)
		}
		t := p.next()
		if t.kind == tokPunct && t.text == "}" {
			return nil
		}
		if t.kind != tokPunct || t.text != "," {
			if t.kind == tokEOF {
				return errorf(open.pos, "the set has no closing }")
			}
			return errorf(t.pos, "unexpected %s in the set: expected , or }", t)
		}
	}
}

// value parses one value of the relation's selector. In a set, a comma
// ends the value; outside, it joins bit mask values as | does.
func (p *parser) value(r *relation, inSet bool) (elem, error) {
	s := r.sel
	t := p.next()
	e := elem{pos: t.pos, bits: -1}
	if t.kind == tokEOF {
		return e, errorf(t.pos, "%s needs a value", s.name)
	}
	if t.kind == tokPunct && t.text == "{" {
		return e, errorf(t.pos, "sets do not nest")
	}
	if s.kind == kindIfname {
		return p.ifname(s, t)
	}
	if t.kind != tokWord {
		return e, errorf(t.pos, "unexpected %s: %s needs a value%s", t, s.name, hint(s))
	}
	switch s.kind {
	case kindFlags:
		v, err := p.number(s, t)
		if err != nil {
			return e, err
		}
		for {
			sep := p.peek()
			if sep.kind != tokPunct || (sep.text != "|" && (sep.text != "," || inSet)) {
				break
			}
			p.next()
			w, err := p.number(s, p.next())
			if err != nil {
				return e, err
			}
			v |= w
		}
		e.lo, e.hi = v, v
		return e, nil
	case kindAddr4, kindAddr6:
		return p.addr(s, t)
	}
	if v, err := p.number(s, t); err == nil {
		e.lo, e.hi = v, v
		return e, nil
	} else if !strings.Contains(t.text, "-") {
		return e, err
	} else {
		// A range: split at the dash where both sides are values
		// (names hold dashes too: echo-request).
		for i := 0; i < len(t.text); i++ {
			if t.text[i] != '-' {
				continue
			}
			lo, err1 := p.number(s, token{tokWord, t.text[:i], t.pos})
			hi, err2 := p.number(s, token{tokWord, t.text[i+1:], t.pos + i + 1})
			if err1 == nil && err2 == nil {
				if lo > hi {
					return e, errorf(t.pos, "the range %s is reversed", t.text)
				}
				e.lo, e.hi, e.rng = lo, hi, true
				return e, nil
			}
		}
		return e, err
	}
}

func hint(s *selector) string {
	if s.kind == kindInt {
		return " (a number)"
	}
	return ""
}

// number parses a single value of a numeric kind: a number in decimal or
// 0x hex, or a name the selector knows.
func (p *parser) number(s *selector, t token) (uint64, error) {
	if t.kind != tokWord {
		if t.kind == tokEOF {
			return 0, errorf(t.pos, "%s needs a value", s.name)
		}
		return 0, errorf(t.pos, "unexpected %s: %s needs a value", t, s.name)
	}
	w := t.text
	for _, sym := range s.names {
		if sym.name == w {
			return sym.val, nil
		}
	}
	if s.kind == kindPriority {
		return priority(s, t)
	}
	v, ok, err := parseUint(t)
	if err != nil {
		return 0, err
	}
	if !ok {
		if len(s.names) > 0 {
			return 0, errorf(t.pos, "%q is not a %s; expected one of %s%s", w, noun(s), symbolList(s.names), orNumber(s))
		}
		return 0, errorf(t.pos, "%q is not a number; %s takes decimal or 0x hex", w, s.name)
	}
	if v > s.max {
		return 0, errorf(t.pos, "%s is out of range for %s: 0-%d", w, s.name, s.max)
	}
	return v, nil
}

func orNumber(s *selector) string {
	if s.kind == kindFlags {
		return "" // as nft's documentation lists them; numbers work too
	}
	return ", or a number"
}

// parseUint reads decimal or 0x hex. ok is false when the word is not a
// number at all; err is set for a number that is wrong.
func parseUint(t token) (v uint64, ok bool, err error) {
	w := t.text
	if strings.HasPrefix(w, "0x") || strings.HasPrefix(w, "0X") {
		v, perr := strconv.ParseUint(w[2:], 16, 64)
		if perr != nil {
			if len(w) > 2 && strings.Trim(w[2:], "0123456789abcdefABCDEF") == "" {
				return 0, true, errorf(t.pos, "%s is too large", w)
			}
			return 0, false, nil
		}
		return v, true, nil
	}
	if w == "" || strings.Trim(w, "0123456789") != "" {
		return 0, false, nil
	}
	if len(w) > 1 && w[0] == '0' {
		return 0, true, errorf(t.pos, "%s has a leading zero, which nft reads as octal; write it without, or in 0x hex", w)
	}
	v, perr := strconv.ParseUint(w, 10, 64)
	if perr != nil {
		return 0, true, errorf(t.pos, "%s is too large", w)
	}
	return v, true, nil
}

// priority parses a tc class, MAJOR:MINOR in hex.
func priority(s *selector, t token) (uint64, error) {
	maj, min, ok := strings.Cut(t.text, ":")
	bad := func() (uint64, error) {
		return 0, errorf(t.pos, "%q is not a %s; expected none, root or MAJOR:MINOR in hex, as tc writes a class (1:10)", t.text, s.name)
	}
	if !ok || maj == "" || min == "" || len(maj) > 4 || len(min) > 4 {
		return bad()
	}
	a, err1 := strconv.ParseUint(maj, 16, 16)
	b, err2 := strconv.ParseUint(min, 16, 16)
	if err1 != nil || err2 != nil {
		return bad()
	}
	return a<<16 | b, nil
}

func noun(s *selector) string {
	switch s.name {
	case "tcp flags":
		return "tcp flag"
	case "meta pkttype":
		return "packet type"
	case "meta l4proto", "ip protocol", "ip6 nexthdr":
		return "protocol name"
	case "ip dscp", "ip6 dscp":
		return "dscp class"
	}
	return s.name
}

func symbolList(syms []symbol) string {
	names := make([]string, len(syms))
	for i, s := range syms {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// addr parses an address, a prefix (address / length) or a range.
func (p *parser) addr(s *selector, t token) (elem, error) {
	e := elem{pos: t.pos, bits: -1}
	parse := func(w string, off int) (netip.Addr, error) {
		a, err := netip.ParseAddr(w)
		if err != nil || a.Zone() != "" {
			return a, errorf(off, "%q is not an IP address", w)
		}
		if (s.kind == kindAddr4) != a.Is4() {
			if s.kind == kindAddr4 {
				return a, errorf(off, "%s is an IPv6 address; %s takes IPv4 ones", w, s.name)
			}
			return a, errorf(off, "%s is an IPv4 address; %s takes IPv6 ones (::ffff:%s for a mapped one)", w, s.name, w)
		}
		return a, nil
	}
	if lo, hi, ok := strings.Cut(t.text, "-"); ok {
		a, err := parse(lo, t.pos)
		if err != nil {
			return e, err
		}
		b, err := parse(hi, t.pos+len(lo)+1)
		if err != nil {
			return e, err
		}
		if b.Less(a) {
			return e, errorf(t.pos, "the range %s is reversed", t.text)
		}
		e.a, e.b, e.rng = a, b, true
		return e, nil
	}
	a, err := parse(t.text, t.pos)
	if err != nil {
		return e, err
	}
	e.a = a
	if !p.isPunct("/") {
		return e, nil
	}
	p.next()
	lt := p.next()
	n, ok, err := parseUint(lt)
	if err != nil {
		return e, err
	}
	if !ok || lt.kind != tokWord || n > uint64(a.BitLen()) {
		if lt.kind == tokEOF {
			return e, errorf(lt.pos, "expected a prefix length 0-%d after /", a.BitLen())
		}
		return e, errorf(lt.pos, "%s is not a prefix length; expected 0-%d", lt, a.BitLen())
	}
	pfx := netip.PrefixFrom(a, int(n))
	if pfx.Masked().Addr() != a {
		return e, errorf(t.pos, "%s/%d has host bits set; write %s", a, n, pfx.Masked())
	}
	if int(n) < a.BitLen() {
		e.bits = int(n)
	}
	return e, nil
}

// ifname parses an interface name: "eth0", eth0, or "eth*" for every name
// that starts with eth.
func (p *parser) ifname(s *selector, t token) (elem, error) {
	e := elem{pos: t.pos, bits: -1}
	if t.kind != tokString && t.kind != tokWord {
		return e, errorf(t.pos, "unexpected %s: %s needs an interface name", t, s.name)
	}
	name := t.text
	if strings.HasSuffix(name, "*") {
		name, e.wild = name[:len(name)-1], true
	}
	switch {
	case name == "" && e.wild:
		return e, errorf(t.pos, `"*" alone matches every name; leave out the %s match instead`, s.name)
	case name == "":
		return e, errorf(t.pos, "the interface name is empty")
	case strings.Contains(name, "*"):
		return e, errorf(t.pos, "%q: * is a wildcard only at the end of an interface name", t.text)
	case len(name) >= s.size:
		return e, errorf(t.pos, "%q is longer than an interface name (%d bytes)", t.text, s.size-1)
	}
	e.name = name
	return e, nil
}

// validate checks that the operator, the mask and the values fit
// together and the selector.
func (r *relation) validate(opPos int) error {
	s := r.sel
	ordered := r.op == opLt || r.op == opGt || r.op == opLe || r.op == opGe
	if r.set && r.op != opImplicit && r.op != opEq && r.op != opNeq {
		return errorf(opPos, "a set takes == or !=, not %s", opText[r.op])
	}
	if ordered && (s.kind == kindIfname || s.kind == kindFlags) {
		return errorf(opPos, "%s takes == or !=, not %s", s.name, opText[r.op])
	}
	if r.hasMask && !(r.op == opImplicit || r.op == opEq || r.op == opNeq) {
		return errorf(opPos, "a masked %s takes == or !=, not %s", s.name, opText[r.op])
	}
	for _, e := range r.elems {
		if ordered && (e.rng || e.bits >= 0) {
			return errorf(e.pos, "%s takes a single value, not a range or prefix", opText[r.op])
		}
		if r.hasMask && e.rng {
			return errorf(e.pos, "a masked %s takes single values, not ranges", s.name)
		}
		if r.hasMask && e.lo&^r.mask != 0 {
			return errorf(e.pos, "%s has bits outside the mask %s, so it never matches", valueText(s, e, r.set), numText(s, r.mask))
		}
		if s.kind == kindFlags && r.set && !r.hasMask && e.lo == 0 {
			return errorf(e.pos, "0 in a set of %s matches packets without any of its bits; write %s == 0 on its own", s.name, s.name)
		}
	}
	if r.anyBits() && r.elems[0].lo == 0 {
		return errorf(r.elems[0].pos, "%s 0 never matches: no bit is set in 0; write %s == 0 for none", s.name, s.name)
	}
	return r.checkOverlap()
}

// checkOverlap rejects sets whose elements overlap: the rules an
// equality set expands to must never count a packet twice.
func (r *relation) checkOverlap() error {
	if !r.set {
		return nil
	}
	type span struct {
		lo, hi [16]byte
		e      elem
	}
	var spans []span
	for _, e := range r.elems {
		var sp span
		sp.e = e
		switch r.sel.kind {
		case kindIfname:
			for _, o := range spans {
				a, b := o.e, e
				if a.name == b.name && a.wild == b.wild ||
					a.wild && strings.HasPrefix(b.name, a.name) ||
					b.wild && strings.HasPrefix(a.name, b.name) {
					return overlapErr(r, o.e, e)
				}
			}
		case kindAddr4, kindAddr6:
			sp.lo, sp.hi = e.a.As16(), e.a.As16()
			if e.rng {
				sp.hi = e.b.As16()
			}
			if e.bits >= 0 {
				off := 128 - e.a.BitLen()
				for i := off + e.bits; i < 128; i++ {
					sp.hi[i/8] |= 0x80 >> (i % 8)
				}
			}
		default:
			put := func(b *[16]byte, v uint64) {
				for i := 0; i < 8; i++ {
					b[15-i] = byte(v >> (8 * i))
				}
			}
			put(&sp.lo, e.lo)
			put(&sp.hi, e.hi)
		}
		spans = append(spans, sp)
	}
	if r.sel.kind == kindIfname {
		return nil
	}
	sorted := slices.Clone(spans)
	sort.SliceStable(sorted, func(i, j int) bool { return string(sorted[i].lo[:]) < string(sorted[j].lo[:]) })
	for i := 1; i < len(sorted); i++ {
		if string(sorted[i].lo[:]) <= string(sorted[i-1].hi[:]) {
			a, b := sorted[i-1].e, sorted[i].e
			if b.pos < a.pos {
				a, b = b, a
			}
			return overlapErr(r, a, b)
		}
	}
	return nil
}

func overlapErr(r *relation, a, b elem) error {
	if b.pos < a.pos {
		a, b = b, a
	}
	return errorf(b.pos, "%s overlaps %s in the set; the elements of a set must not overlap, or a packet would be counted twice",
		valueText(r.sel, b, true), valueText(r.sel, a, true))
}
