// Package managed turns a rules.yaml into the nftables table the exporter
// owns, and keeps the kernel in step with it: atomically, without touching
// anything it did not create, and without resetting the counters of
// entries that did not change.
//
// The table, "inet ipacct" by default, holds:
//
//	chain managed-by-ipacct_exporter   an empty chain: the mark of ownership
//	chain input, output, forward       base chains, after (or before) the
//	                                   filter, that only jump
//	chain web4_in-1a2b3c4d             one chain per entry and direction,
//	                                   named after a hash of its rules
//
// A changed entry gets a new chain name, so re-applying swaps exactly the
// chains whose rules changed and leaves every other chain, and its
// counters, alone.
package managed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/nftmatch"
	"github.com/ipacct/ipacct_exporter/tag"
)

// MarkerChain is the empty chain whose presence says that the exporter
// created the table. A table of the same name without it is not ours.
const MarkerChain = "managed-by-ipacct_exporter"

// Ruleset is the desired content of the managed table.
type Ruleset struct {
	Table    string
	Priority int32       // relative to the filter's: see config.Count
	Base     []BaseChain // in hook order: input, output, forward
	// Chains are the entry chains, in file order, then the chains of the
	// per-address sets.
	Chains   []Chain
	Sets     []Set      // per-address sets, in file order
	AddrBase []AddrBase // per-address base chains
}

// BaseChain is a base chain and the entry chains it jumps to.
type BaseChain struct {
	Hook  config.Hook
	Jumps []string
}

// Chain is the rules of one entry in one direction.
type Chain struct {
	Name  string
	Rules []Rule
}

// Rule is one rule, as netlink expressions and as nft text.
type Rule struct {
	Comment string
	// Text is the match in nft syntax, for the dry run; the rule counts
	// what it matches. With Full, Text is the whole rule but its comment,
	// and Exprs all its expressions.
	Text  string
	Exprs []expr.Any
	Full  bool
	// GotoMap, when set, ends the rule with a lookup of the value it
	// leaves in register 1 in an anonymous verdict map.
	GotoMap *GotoMap
}

// GotoMap maps addresses of a family to chains: Keys[i] goes to
// Chains[i].
type GotoMap struct {
	Family family.Address
	Keys   [][]byte
	Chains []string
}

// Build computes the ruleset a valid file asks for.
func Build(f *config.File) (*Ruleset, error) {
	rs := &Ruleset{Table: f.Table, Priority: f.Count.Priority()}
	jumps := map[config.Hook][]string{}
	for i, e := range f.Accounting {
		if e.Source == config.SourceFlow {
			continue // counted from flow records, not by the kernel
		}
		for _, dir := range e.Directions() {
			rules, err := entryRules(e, dir)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: accounting[%d]: %w", f.Path, e.Line, i, err)
			}
			c := Chain{Name: chainName(e.Tag, dir, rules), Rules: rules}
			rs.Chains = append(rs.Chains, c)
			for _, h := range e.Hooks {
				if h.Sees(dir) {
					jumps[h] = append(jumps[h], c.Name)
				}
			}
		}
	}
	for _, h := range config.Hooks {
		if len(jumps[h]) > 0 {
			rs.Base = append(rs.Base, BaseChain{Hook: h, Jumps: jumps[h]})
		}
	}
	buildAddresses(f.Kernel(), rs)
	return rs, nil
}

// chainName is the tag, the direction and a hash of the rules: equal rules,
// equal name.
func chainName(t string, dir tag.Direction, rules []Rule) string {
	h := sha256.New()
	for _, r := range rules {
		fmt.Fprintf(h, "%s\x00%s\x00", r.Text, r.Comment)
	}
	return fmt.Sprintf("%s_%s-%s", t, dir, hex.EncodeToString(h.Sum(nil))[:8])
}

// entryRules expands an entry into one rule per combination of its lists:
// every list is an OR, so a packet matches at most one combination when the
// lists do not overlap, which config validation ensures.
func entryRules(e config.Entry, dir tag.Direction) ([]Rule, error) {
	comment := fmt.Sprintf("=%s_%s=", e.Tag, dir)
	if e.Description != "" {
		comment += " " + e.Description
	}
	var m *nftmatch.Match
	if e.Match != "" {
		var err error
		if m, err = nftmatch.Parse(e.Match); err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
	}
	var rules []Rule
	for _, fam := range e.Families() {
		local, okL := ofFamily(e.Local, fam)
		remote, okR := ofFamily(e.Remote, fam)
		var except []netip.Prefix
		if len(e.RemoteExcept) > 0 {
			except, _ = ofFamily(e.RemoteExcept, fam) // none of this family: nothing to except
		}
		if !okL || !okR {
			continue // the entry names no address of this family
		}
		protos := e.Protocol
		if len(protos) == 0 {
			protos = []config.Protocol{config.ProtocolAny}
		}
		ports := e.Ports
		if len(ports) == 0 {
			ports = []config.PortRange{{}}
		}
		for _, l := range local {
			for _, r := range remote {
				for _, p := range protos {
					if !p.Fits(fam) {
						continue
					}
					for _, pr := range ports {
						// In an inet table an address match needs the family
						// checked first, as nft does implicitly.
						ms := []match{nfproto(fam)}
						if e.Interface != "" {
							ms = append(ms, ifname(dir, e.Interface))
						}
						if l.IsValid() {
							ms = append(ms, addr(fam, dir == tag.Out, l, false))
						}
						if r.IsValid() {
							ms = append(ms, addr(fam, dir == tag.In, r, false))
						}
						for _, x := range except {
							ms = append(ms, addr(fam, dir == tag.In, x, true))
						}
						if p != config.ProtocolAny {
							ms = append(ms, l4proto(p))
						}
						if pr.Low != 0 {
							ms = append(ms, port(dir, pr))
						}
						alts := []nftmatch.Alternative{{}}
						if m != nil {
							var err error
							if alts, err = m.AlternativesAfter(fam, p.Number()); err != nil {
								return nil, fmt.Errorf("match: %w", err)
							}
						}
						for _, a := range alts {
							r := rule(comment, append(slices.Clip(ms), match{a.Text, a.Exprs}))
							if len(r.Exprs) > maxRuleExprs {
								return nil, fmt.Errorf("a rule has %d expressions, and the kernel allows %d: shorten the match or remote_except", len(r.Exprs), maxRuleExprs)
							}
							rules = append(rules, r)
						}
					}
				}
			}
		}
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("no rule matches: the addresses, protocols and family do not fit together")
	}
	return rules, nil
}

// ofFamily keeps the prefixes of one family. An empty list matches any
// address ([invalid prefix]); a list without a prefix of the family is
// reported as not fitting.
func ofFamily(ps []netip.Prefix, fam family.Address) ([]netip.Prefix, bool) {
	if len(ps) == 0 {
		return []netip.Prefix{{}}, true
	}
	var out []netip.Prefix
	for _, p := range ps {
		if family.Of(p.Addr()) == fam {
			out = append(out, p)
		}
	}
	return out, len(out) > 0
}

// match is one condition of a rule, in both forms.
type match struct {
	text  string
	exprs []expr.Any
}

func rule(comment string, ms []match) Rule {
	r := Rule{Comment: comment}
	var text []string
	for _, m := range ms {
		if m.text != "" {
			text = append(text, m.text)
		}
		r.Exprs = append(r.Exprs, m.exprs...)
	}
	r.Text = strings.Join(text, " ")
	r.Exprs = append(r.Exprs, &expr.Counter{})
	return r
}

// nfproto matches the address family: nft's meta nfproto ipv4 or ipv6.
func nfproto(fam family.Address) match {
	return match{"meta nfproto " + string(fam), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.NFProto()}},
	}}
}

func ifname(dir tag.Direction, name string) match {
	key, word := expr.MetaKeyIIFNAME, "iifname"
	if dir == tag.Out {
		key, word = expr.MetaKeyOIFNAME, "oifname"
	}
	// IFNAMSIZ bytes, NUL-padded; a trailing '*' matches the prefix.
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	n := uint32(unix.IFNAMSIZ)
	if strings.HasSuffix(name, "*") {
		data = []byte(strings.TrimSuffix(name, "*"))
		n = uint32(len(data))
	}
	return match{fmt.Sprintf("%s %q", word, name), []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data[:n]},
	}}
}

// addr matches the source (src) or destination address against a prefix,
// or against everything but it (negate).
func addr(fam family.Address, src bool, p netip.Prefix, negate bool) match {
	proto, word, load := addrLoad(fam, src)
	off, size := load.Offset, load.Len
	op, opText := expr.CmpOpEq, ""
	if negate {
		op, opText = expr.CmpOpNeq, "!= "
	}
	exprs := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size}}
	if p.Bits() < int(size*8) {
		mask := make([]byte, size)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)})
	}
	exprs = append(exprs, &expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()})
	text := p.Masked().String()
	if p.IsSingleIP() {
		text = p.Addr().String()
	}
	return match{fmt.Sprintf("%s %s %s%s", proto, word, opText, text), exprs}
}

// addrLoad loads the source (src) or destination address of the IPv4 (nft's
// ip) or IPv6 (ip6) header into register 1.
func addrLoad(fam family.Address, src bool) (proto, word string, load *expr.Payload) {
	// Offsets in the IPv4 and IPv6 headers.
	word, off, size, proto := "daddr", uint32(16), uint32(4), "ip"
	switch {
	case fam == family.IPv6 && src:
		word, off, size, proto = "saddr", 8, 16, "ip6"
	case fam == family.IPv6:
		off, size, proto = 24, 16, "ip6"
	case src:
		word, off = "saddr", 12
	}
	return proto, word, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size}
}

// maxRuleExprs is the kernel's limit of expressions in a rule
// (NFT_RULE_MAXEXPRS).
const maxRuleExprs = 128

func l4proto(p config.Protocol) match {
	return match{"meta l4proto " + string(p), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.Number()}},
	}}
}

// port matches the local port: the destination port of traffic in, the
// source port of traffic out.
func port(dir tag.Direction, pr config.PortRange) match {
	word, off := "th dport", uint32(2)
	if dir == tag.Out {
		word, off = "th sport", 0
	}
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}
	be := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	if pr.Low == pr.High {
		return match{fmt.Sprintf("%s %d", word, pr.Low), []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be(pr.Low)}}}
	}
	return match{fmt.Sprintf("%s %d-%d", word, pr.Low, pr.High), []expr.Any{load,
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be(pr.Low), ToData: be(pr.High)}}}
}

// userData is a rule's comment as nft stores it, so that nft list ruleset
// shows it and the exporter's nftables collector reads it.
func userData(comment string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, comment)
}

// Text renders the ruleset in nft syntax, as "nft list table" would show it
// without counters: the dry run.
func (rs *Ruleset) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", rs.Table)
	for _, s := range rs.Sets {
		b.WriteString(s.setText())
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\tchain %s {\n\t}\n", MarkerChain)
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, "\n\tchain %s {\n", c.Name)
		for _, r := range c.Rules {
			b.WriteString("\t\t" + r.text() + "\n")
		}
		b.WriteString("\t}\n")
	}
	for _, bc := range rs.Base {
		fmt.Fprintf(&b, "\n\tchain %s {\n\t\ttype filter hook %s priority filter %+d; policy accept;\n", bc.Hook, bc.Hook, rs.Priority)
		for _, j := range bc.Jumps {
			fmt.Fprintf(&b, "\t\tjump %s\n", j)
		}
		b.WriteString("\t}\n")
	}
	for _, bc := range rs.AddrBase {
		fmt.Fprintf(&b, "\n\tchain %s {\n\t\ttype filter hook %s priority filter %+d; policy accept;\n", bc.Name, bc.Hook, rs.Priority)
		for _, r := range bc.Rules {
			b.WriteString("\t\t" + r.text() + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// text is the rule in nft syntax.
func (r Rule) text() string {
	t := r.Text
	if !r.Full {
		t = strings.TrimPrefix(t+" counter", " ")
	}
	if r.Comment != "" {
		t += fmt.Sprintf(" comment %q", r.Comment)
	}
	return t
}

// wantChain is a chain of the managed table as the ruleset has it.
type wantChain struct {
	name  string
	hook  config.Hook // "" for a chain that is not a base chain
	rules []Rule
	// addsTo is the per-address set that the chain's rules add to, if any.
	addsTo string
}

// chains lists every chain of the ruleset in an order they can be made in:
// the marker, the entry chains and the sets' (a shard's before the chain
// that goes to it), then the base chains that jump or go to them.
func (rs *Ruleset) chains() []wantChain {
	addsTo := map[string]string{}
	for _, s := range rs.Sets {
		addsTo["addr_"+s.Name] = s.Name
	}
	list := []wantChain{{name: MarkerChain}}
	for _, c := range rs.Chains {
		list = append(list, wantChain{name: c.Name, rules: c.Rules, addsTo: addsTo[c.Name]})
	}
	for _, bc := range rs.Base {
		wc := wantChain{name: string(bc.Hook), hook: bc.Hook}
		for _, j := range bc.Jumps {
			wc.rules = append(wc.rules, Rule{Text: "jump " + j, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: j}}, Full: true})
		}
		list = append(list, wc)
	}
	for _, bc := range rs.AddrBase {
		list = append(list, wantChain{name: bc.Name, hook: bc.Hook, rules: bc.Rules})
	}
	return list
}

// chain is the chain as google/nftables describes it, to create.
func (wc wantChain) chain(table *nftables.Table, prio nftables.ChainPriority) *nftables.Chain {
	c := &nftables.Chain{Name: wc.name, Table: table}
	if wc.hook != "" {
		accept := nftables.ChainPolicyAccept
		c.Type, c.Hooknum, c.Priority, c.Policy = nftables.ChainTypeFilter, wc.hook.NFT(), nftables.ChainPriorityRef(prio), &accept
	}
	return c
}

// sameKind reports whether the kernel's chain c is what wc asks for but
// its rules: regular, or a filter chain at wc's hook and priority that
// accepts.
func (wc wantChain) sameKind(c *nftables.Chain, prio nftables.ChainPriority) bool {
	if wc.hook == "" {
		return c.Hooknum == nil
	}
	return c.Hooknum != nil && *c.Hooknum == *wc.hook.NFT() && c.Priority != nil && *c.Priority == prio &&
		c.Type == nftables.ChainTypeFilter && c.Policy != nil && *c.Policy == nftables.ChainPolicyAccept
}

// tableOf is the managed table as google/nftables names it.
func (rs *Ruleset) tableOf() *nftables.Table {
	return &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
}
