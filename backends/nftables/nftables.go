// Package nftables reads tagged counters from the kernel's nftables ruleset
// over netlink, with github.com/google/nftables: every table of every family,
// so also the tables that iptables-nft writes. A rule is read when its
// comment carries a tag; the comment is the rule's user data (native nft
// rules) or an xt "comment" match (iptables-nft's -m comment). Named counter
// objects whose comment carries a tag are read too.
//
// Nothing here writes to the kernel: no rule, counter or object is changed,
// and no Reset* call is made (those zero counters).
package nftables

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/backends"
)

// DefaultDumpBufferSize is the receive buffer offered to the kernel for
// dumps; see primeDumpBuffer.
const DefaultDumpBufferSize = 32 << 10

// Options configures a Backend.
type Options struct {
	// NetNS is the path of the network namespace to read; empty for the
	// exporter's own.
	NetNS string
	// DumpBufferSize is the size of the first receive on each socket, which
	// sets the size of the kernel's dump chunks; 0 means
	// DefaultDumpBufferSize, and a negative value leaves the library's
	// default (one page).
	DumpBufferSize int
}

// Backend reads nftables counters. It keeps no socket between reads.
type Backend struct {
	opts Options
}

// New returns a Backend.
func New(opts Options) *Backend {
	if opts.DumpBufferSize == 0 {
		opts.DumpBufferSize = DefaultDumpBufferSize
	}
	return &Backend{opts: opts}
}

// Read walks the ruleset in the kernel's order (tables, their chains, their
// rules), then the named counters.
func (b *Backend) Read(ctx context.Context) (backends.Reading, error) {
	var reading backends.Reading
	nsFd, closeNS, err := openNetNS(b.opts.NetNS)
	if err != nil {
		return reading, err
	}
	defer closeNS()

	connOpts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithNetNSFd(nsFd)}
	if b.opts.DumpBufferSize > 0 {
		connOpts = append(connOpts, nftables.WithSockOptions(primeDumpBuffer(b.opts.DumpBufferSize)))
	}
	conn, err := nftables.New(connOpts...)
	if err != nil {
		return reading, explain("opening netlink socket", err)
	}
	defer conn.CloseLasting()

	tables, err := conn.ListTables()
	if err != nil {
		return reading, explain("listing tables", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return reading, explain("listing chains", err)
	}
	byTable := make(map[tableKey][]*nftables.Chain, len(tables))
	for _, c := range chains {
		k := tableKey{c.Table.Family, c.Table.Name}
		byTable[k] = append(byTable[k], c)
	}
	for _, t := range tables {
		family := FamilyName(t.Family)
		for _, c := range byTable[tableKey{t.Family, t.Name}] {
			if err := ctx.Err(); err != nil {
				return reading, err
			}
			rules, err := conn.GetRules(t, c)
			if err != nil {
				if _, lerr := conn.ListChain(t, c.Name); lerr != nil {
					continue // the chain or its table went away since the listing
				}
				return reading, explain(fmt.Sprintf("reading rules of %s %s %s", family, t.Name, c.Name), err)
			}
			for _, r := range rules {
				comment, ok := ruleComment(r)
				if !ok {
					continue
				}
				counter := ruleCounter(r)
				if counter == nil {
					// A tagged rule without a counter counts nothing: report it
					// so that the operator adds "counter".
					reading.Invalid = append(reading.Invalid, backends.InvalidComment{
						Where: where(family, t.Name, c.Name), Comment: comment,
						Err: errors.New("the rule has no counter expression"),
					})
					continue
				}
				reading.Add(where(family, t.Name, c.Name), comment, family, counter.Packets, counter.Bytes)
			}
		}
	}
	if err := readCounterObjects(nsFd, b.opts.DumpBufferSize, &reading); err != nil {
		return reading, explain("reading named counters", err)
	}
	return reading, nil
}

type tableKey struct {
	family nftables.TableFamily
	name   string
}

func where(family, table, chain string) string {
	return family + " " + table + " " + chain
}

// ruleComment returns the comment of a native nft rule (user data) or of an
// iptables-nft rule (xt comment match).
func ruleComment(r *nftables.Rule) (string, bool) {
	if c, ok := commentFromUserData(r.UserData); ok {
		return c, true
	}
	for _, e := range r.Exprs {
		if m, ok := e.(*expr.Match); ok && m.Name == "comment" {
			if c, ok := m.Info.(*xt.Comment); ok {
				return string(*c), true
			}
		}
	}
	return "", false
}

// ruleCounter returns the rule's first anonymous counter: the one that "nft
// add rule … counter" and iptables-nft create.
func ruleCounter(r *nftables.Rule) *expr.Counter {
	for _, e := range r.Exprs {
		if c, ok := e.(*expr.Counter); ok {
			return c
		}
	}
	return nil
}

// FamilyName is the netfilter family as nft spells it.
func FamilyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family%d", f)
}

func openNetNS(path string) (fd int, closeFn func(), err error) {
	if path == "" {
		return 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("network namespace: %w", err)
	}
	return int(f.Fd()), func() { f.Close() }, nil
}

// explain turns the kernel's refusal into the sentence an operator needs.
// The library formats some errors with %v, so the errno is also looked for
// in the text.
func explain(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) || containsErrno(err, unix.EPERM) {
		return fmt.Errorf("%s: %w (reading nftables needs CAP_NET_ADMIN: run as root or grant the capability)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
