package nftables

import (
	"sync"

	"github.com/ipacct/ipacct_exporter/backends"
)

// comments keeps the comments a backend read, parsed, from one read to the
// next: a ruleset's comments change seldom, and copying each out of the
// receive buffer and parsing it again cost a third of a read of 20,000
// rules. A lookup by the buffer's bytes allocates nothing; the Records of a
// read share the cached strings.
type comments struct {
	mu sync.Mutex // held by the read that uses the cache
	// lookup guards m: a read looks up from several sockets at once.
	lookup sync.Mutex
	m      map[string]*cachedComment
	// read numbers the reads; used counts the comments this one used.
	read uint64
	used int
}

type cachedComment struct {
	backends.Comment
	read uint64 // the last read that used it
}

// begin starts a read that uses the cache, and returns false when another
// read of the backend is using it: that read goes without.
func (c *comments) begin() bool {
	if !c.mu.TryLock() {
		return false
	}
	if c.m == nil {
		c.m = make(map[string]*cachedComment)
	}
	c.read++
	c.used = 0
	return true
}

// end ends a read, dropping the comments it did not use once they are
// more than those it did: the cache follows the ruleset, not its history.
func (c *comments) end() {
	if len(c.m) > 2*c.used+1024 {
		for k, e := range c.m {
			if e.read != c.read {
				delete(c.m, k)
			}
		}
	}
	c.mu.Unlock()
}

// get returns the parsed comment; c is nil for a read without the cache.
func (c *comments) get(text []byte) backends.Comment {
	if c == nil {
		return backends.ParseComment(string(text))
	}
	c.lookup.Lock()
	defer c.lookup.Unlock()
	e := c.m[string(text)]
	if e == nil {
		e = &cachedComment{Comment: backends.ParseComment(string(text))}
		c.m[e.Text] = e
	}
	if e.read != c.read {
		e.read = c.read
		c.used++
	}
	return e.Comment
}
