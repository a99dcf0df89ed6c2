package managed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// Per-address accounting, for each address entry, family and direction:
//
//	set rent31_ipv4_out-1a2b3c4d          dynamic, a counter per element;
//	                                      named after a hash of its
//	                                      definition
//	chain addr_rent31_ipv4_out-1a2b3c4d   adds the address to the set, or
//	                                      counts the packet as overflow
//	                                      when the set is full
//	chain addr_out_forward-5e6f7a8b       a base chain per direction and
//	                                      hook: "goto" the set's chain for
//	                                      each network
//
// A base chain goes to the chain of the one entry whose network holds the
// address (networks do not overlap), and ends there: "goto" returns to
// the hook, not to the base chain. That is why each direction has base
// chains of its own: traffic between two tenants counts as out for one
// and in for the other.
//
// A set's name changes only with its definition (size, timeout,
// description), so a reload that changes the networks keeps every set,
// with its counts, and swaps only the base chains; unless the size comes
// from the networks (config.AddressEntry.SetSize) and they grow past it.
//
// A set larger than shardSize is split into a power of two of shards, each
// with its own set and chain, and the set's chain sends an address to one of
// them by its lowest bits:
//
//	chain addr_rent31_ipv4_out-1a2b3c4d   ip saddr & 0.0.0.3 vmap { 0.0.0.0 : goto
//	                                      addr_rent31_ipv4_out-1a2b3c4d.0, … }
//	set rent31_ipv4_out-1a2b3c4d.0 …      and its chain, as above
//
// because the kernel dumps a set in chunks and walks the set from its start
// for each chunk: reading one set of n addresses costs n², four sets of n/4
// cost a quarter of that. The exporter sums the shards again.

// Set is a per-address set of the managed table.
type Set struct {
	Name     string
	Comment  string // the tag token and the description
	Family   family.Address
	Size     uint32
	Timeout  time.Duration // 0: elements stay
	Networks []netip.Prefix
}

// AddrBase is a base chain of per-address accounting.
type AddrBase struct {
	Name  string
	Hook  config.Hook
	Rules []Rule
}

// buildAddresses adds the sets and chains of the address entries to rs.
func buildAddresses(f *config.File, rs *Ruleset) {
	type baseKey struct {
		dir  tag.Direction
		hook config.Hook
	}
	bases := map[baseKey][]Rule{}
	for _, e := range f.Addresses {
		for _, fam := range e.Families() {
			nets := e.NetworksOf(fam)
			for _, dir := range e.Directions() {
				s := addressSet(e, fam, dir)
				s.Networks = nets
				chain := Chain{Name: "addr_" + s.Name}
				if shards := s.shards(); len(shards) == 1 {
					chain.Rules = setRules(s, dir)
					rs.Sets = append(rs.Sets, s)
				} else {
					// The shards' chains first: the vmap names them.
					targets := make([]string, len(shards))
					for i, sh := range shards {
						targets[i] = "addr_" + sh.Name
						rs.Sets = append(rs.Sets, sh)
						rs.Chains = append(rs.Chains, Chain{Name: targets[i], Rules: setRules(sh, dir)})
					}
					chain.Rules = []Rule{shardRule(s.Family, dir, targets)}
				}
				rs.Chains = append(rs.Chains, chain)
				for _, h := range e.Hooks {
					if !h.Sees(dir) {
						continue
					}
					k := baseKey{dir, h}
					for _, n := range nets {
						bases[k] = append(bases[k], gotoRule(fam, dir, n, chain.Name))
					}
				}
			}
		}
	}
	for _, dir := range []tag.Direction{tag.In, tag.Out} {
		for _, h := range config.Hooks {
			rules := bases[baseKey{dir, h}]
			if len(rules) == 0 {
				continue
			}
			hash := sha256.New()
			for _, r := range rules {
				fmt.Fprintf(hash, "%s\x00", r.Text)
			}
			name := fmt.Sprintf("addr_%s_%s-%s", dir, h, hex.EncodeToString(hash.Sum(nil))[:8])
			rs.AddrBase = append(rs.AddrBase, AddrBase{Name: name, Hook: h, Rules: rules})
		}
	}
}

// addressSet is the set of one entry, family and direction. Its name
// hashes what a set cannot change in place.
func addressSet(e config.AddressEntry, fam family.Address, dir tag.Direction) Set {
	comment := fmt.Sprintf("=%s_%s=", e.Tag, dir)
	if e.Description != "" {
		comment += " " + e.Description
	}
	s := Set{Comment: comment, Family: fam, Size: e.SetSize(fam), Timeout: e.Timeout}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d", fam, comment, s.Size, e.Timeout.Milliseconds()))
	s.Name = fmt.Sprintf("%s_%s_%s-%s", e.Tag, fam, dir, hex.EncodeToString(h[:])[:8])
	return s
}

// shardSize is the most addresses a set of the managed table holds
// before it is split (see the top of this file). At 16,384 the kernel dumps
// a set in a few milliseconds.
const shardSize = 16384

// shards splits a set larger than shardSize into a power of two of sets
// of the same comment and networks, named NAME.0, NAME.1, …; a smaller set
// is its one shard. An address goes to the shard its lowest bits number:
// the addresses of a busy network are dense, so that spreads them evenly,
// and unlike a hash it is a key nft lists as it is. Each shard takes an
// eighth more than its share for what unevenness is left, so the shards
// together hold at least Size.
func (s Set) shards() []Set {
	n := uint32(1)
	for n*shardSize < s.Size {
		n *= 2
	}
	if n == 1 {
		return []Set{s}
	}
	share := (s.Size + n - 1) / n
	list := make([]Set, n)
	for i := range list {
		sh := s
		sh.Name = fmt.Sprintf("%s.%d", s.Name, i)
		sh.Size = share + (share+7)/8
		list[i] = sh
	}
	return list
}

// shardRule sends the address to the chain of its shard: the address,
// masked to its lowest bits, looked up in a verdict map.
func shardRule(fam family.Address, dir tag.Direction, targets []string) Rule {
	proto, field, load := addressLoad(fam, dir)
	f := nfproto(fam)
	vmap := make([]string, len(targets))
	keys := make([][]byte, len(targets))
	for i, t := range targets {
		k := shardKey(fam, uint32(i))
		keys[i] = k.AsSlice()
		vmap[i] = fmt.Sprintf("%s : goto %s", k, t)
	}
	mask := shardKey(fam, uint32(len(targets)-1))
	return Rule{
		Text: fmt.Sprintf("%s %s %s & %s vmap { %s }", f.text, proto, field, mask, strings.Join(vmap, ", ")),
		Exprs: []expr.Any{
			f.exprs[0], f.exprs[1],
			load,
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: load.Len, Mask: mask.AsSlice(), Xor: make([]byte, load.Len)},
		},
		GotoMap: &GotoMap{Family: fam, Keys: keys, Chains: targets},
		Full:    true,
	}
}

// shardKey is the address whose lowest bits are i and the others zero.
func shardKey(fam family.Address, i uint32) netip.Addr {
	if fam == family.IPv6 {
		var b [16]byte
		binary.BigEndian.PutUint32(b[12:], i)
		return netip.AddrFrom16(b)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], i)
	return netip.AddrFrom4(b)
}

// setRules are the rules of a set's chain: add the address with a counter
// and stop; when the set is full the add fails, and the next rule counts
// the packet as overflow.
func setRules(s Set, dir tag.Direction) []Rule {
	proto, field, load := addressLoad(s.Family, dir)
	// The family check is the base chain's already; it is repeated so that
	// nft can tell which header the key comes from, and lists "ip saddr".
	fam := nfproto(s.Family)
	update := Rule{
		Text: fmt.Sprintf("%s update @%s { %s %s counter } return", fam.text, s.Name, proto, field),
		Exprs: []expr.Any{
			fam.exprs[0], fam.exprs[1],
			load,
			&expr.Dynset{SrcRegKey: 1, SetName: s.Name, Operation: unix.NFT_DYNSET_OP_UPDATE, Exprs: []expr.Any{&expr.Counter{}}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		Full: true,
	}
	overflow := Rule{
		Text:    "counter",
		Comment: nft.OverflowComment(s.Name),
		Exprs:   []expr.Any{&expr.Counter{}},
		Full:    true,
	}
	return []Rule{update, overflow}
}

// addressLoad loads the accounted address: the source of traffic out, the
// destination of traffic in.
func addressLoad(fam family.Address, dir tag.Direction) (proto, field string, load *expr.Payload) {
	return addrLoad(fam, dir == tag.Out)
}

func gotoRule(fam family.Address, dir tag.Direction, n netip.Prefix, chain string) Rule {
	ms := []match{nfproto(fam), addr(fam, dir == tag.Out, n, false)}
	r := Rule{Full: true}
	var text []string
	for _, m := range ms {
		text = append(text, m.text)
		r.Exprs = append(r.Exprs, m.exprs...)
	}
	r.Text = strings.Join(text, " ") + " goto " + chain
	r.Exprs = append(r.Exprs, &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain})
	return r
}

// nftSet is a Set as google/nftables describes it.
func (s Set) nftSet(table *nftables.Table) *nftables.Set {
	return &nftables.Set{
		Table: table, Name: s.Name, KeyType: s.Family.SetType(), Dynamic: true, Size: s.Size,
		HasTimeout: s.Timeout > 0, Timeout: s.Timeout, Comment: s.Comment,
	}
}

// setText renders a set for the dry run.
func (s Set) setText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tsize %d\n", s.Name, s.Family.SetType().Name, s.Size)
	if s.Timeout > 0 {
		fmt.Fprintf(&b, "\t\tflags dynamic,timeout\n\t\ttimeout %s\n", nftDuration(s.Timeout))
	} else {
		b.WriteString("\t\tflags dynamic\n")
	}
	fmt.Fprintf(&b, "\t\tcomment %q\n\t}\n", s.Comment)
	return b.String()
}

// nftDuration writes a duration as nft does: 1d2h3m4s.
func nftDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	if d > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dms", d.Milliseconds())
	}
	return b.String()
}
