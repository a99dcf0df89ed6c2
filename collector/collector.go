// Package collector defines what a source of netfilter counters gives the
// exporter: one Record per tagged kernel counter, in a stable order. Each
// source lives in a package below this one; the exporter aggregates.
package collector

import (
	"context"
	"net/netip"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// Record is one kernel counter whose comment carries a tag.
type Record struct {
	Tag         string
	Direction   tag.Direction
	Family      family.Table // of the rule's or counter's table: ip, ip6, inet, …
	Description string
	Packets     uint64
	Bytes       uint64
	// ID names the kernel counter across reads by where it is and what it
	// matches, never by its handle or values, so that a rule that is
	// replaced by an identical one, or restored from a save, keeps it: the
	// ID of such a description (see ID). Rules with one ID in one series
	// are told apart by their order.
	ID uint64
	// Handle is the kernel's handle of the rule or object, 0 when it has
	// none: a counter that went down under the same handle was zeroed.
	Handle uint64
	// MadeAtZero tells that the counter is in the exporter's own table,
	// where it makes every counter at zero: one with a new handle is new.
	MadeAtZero bool
}

// InvalidComment is a comment that opens a tag token that does not parse.
type InvalidComment struct {
	Where   string // where the rule is, for the log: "ip filter INPUT"
	Comment string
	Err     error
}

// Reading is what a collector saw in one pass over the kernel's counters.
// Records come in the order of the ruleset, so that "the first description"
// is stable from one scrape to the next.
type Reading struct {
	Records []Record
	Invalid []InvalidComment
	// Sets are the tagged per-address sets, in the kernel's order.
	Sets []AddressSet
}

// AddressSet is a set of IP addresses whose comment carries a tag and whose
// elements each have a counter: per-address accounting.
type AddressSet struct {
	Tag         string
	Direction   tag.Direction
	Description string
	Family      family.Address // of the addresses
	Where       string         // "inet ipacct set rent31_ipv4_out", for the log; ID(Where) is its elements'.
	// Handle is the set's kernel handle, 0 when it has none: an element
	// that went down in the same set was zeroed.
	Handle uint64
	// MadeAtZero: the set is in the exporter's own table (see Record).
	MadeAtZero bool
	// Capacity is the set's size limit; 0 when it has none.
	Capacity uint32
	Elements []AddressCount
	// Overflow is the counter of the rule that counts what the set could
	// not take because it was full, if a rule says so (see the nftables
	// collector).
	Overflow *Counter
}

// AddressCount is one set element's counter.
type AddressCount struct {
	Addr           netip.Addr
	Packets, Bytes uint64
}

// Counter is a packet and byte count.
type Counter struct{ Packets, Bytes uint64 }

// Collector reads tagged counters. Read must not change any rule or counter in
// the kernel, and must be safe to call from concurrent scrapes.
type Collector interface {
	Read(ctx context.Context) (Reading, error)
}

// Comment is a counter's comment, parsed.
type Comment struct {
	Text string
	Tag  tag.Tag
	Err  error // tag.ErrNoTag for a comment without a tag
}

// ParseComment parses a comment with tag.Parse.
func ParseComment(text string) Comment {
	t, err := tag.Parse(text)
	return Comment{Text: text, Tag: t, Err: err}
}

// Add appends what a counter's comment holds to r: rec, with the tag,
// direction and description filled in, for a tag; an InvalidComment for a
// broken tag; nothing for a comment without one. where names the counter
// in the log.
func (r *Reading) Add(where string, c Comment, rec Record) {
	switch {
	case c.Err == tag.ErrNoTag:
	case c.Err != nil:
		r.Invalid = append(r.Invalid, InvalidComment{Where: where, Comment: c.Text, Err: c.Err})
	default:
		rec.Tag, rec.Direction, rec.Description = c.Tag.Name, c.Tag.Direction, c.Tag.Description
		r.Records = append(r.Records, rec)
	}
}

// ID is the Record.ID of a counter described by s (where it is and what
// it matches): its 64-bit FNV-1a hash. Hashes, not the descriptions,
// stand for the counters of the tracked series: a rule's description is
// about a hundred bytes, and hosts have tens of thousands.
func ID(s string) uint64 { return HashMore(fnvOffset, s) }

// HashMore continues the hash of ID over more of a description:
// HashMore(ID(a), b) == ID(a+b).
func HashMore[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// The 64-bit FNV-1a parameters (hash/fnv's), inline: ID runs for every rule
// of every read, and fnv.New64a's interface costs an allocation.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)
