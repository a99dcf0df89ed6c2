package nft

import "sync"

// A rule's content (contentOf) is FNV-1a over its expressions, a byte at a
// time: it was most of a read's decode. A table's rules are mostly the
// same from one read to the next, so a read keeps each tagged rule's
// content by its handle, and the next read takes it from there when the
// rule under that handle still hashes (rule.check, maphash over the same
// bytes, ten times faster) to what it did. A rule replaced under its
// handle ("nft replace rule … handle N") hashes otherwise, and its content
// is hashed again: it follows the new expressions as without the memo.

// memoEntry is a tagged rule's content in one read.
type memoEntry struct {
	handle, check, content uint64
}

// ruleMemo is the contents of one table's tagged rules in the last read,
// in the dump's order, and those of the read under way.
type ruleMemo struct {
	last, next []memoEntry
	pos        int            // where in last the next rule is expected
	index      map[uint64]int // last's positions by handle, made at the first rule out of order
}

// content is the content of r, taken from the last read when its handle
// and check are those of a rule there, or else hashed; the read under way
// keeps it.
func (m *ruleMemo) content(r *rule) uint64 {
	if r.handle == 0 {
		return contentOf(r)
	}
	e, ok := m.find(r.handle)
	if !ok || e.check != r.check {
		e = memoEntry{handle: r.handle, check: r.check, content: contentOf(r)}
	}
	m.next = append(m.next, e)
	return e.content
}

// find looks for handle in the last read: next in order, as when nothing
// changed, or by the index.
func (m *ruleMemo) find(handle uint64) (memoEntry, bool) {
	if m.pos < len(m.last) && m.last[m.pos].handle == handle {
		m.pos++
		return m.last[m.pos-1], true
	}
	if m.index == nil {
		m.index = make(map[uint64]int, len(m.last))
		for i, e := range m.last {
			m.index[e.handle] = i
		}
	}
	i, ok := m.index[handle]
	if !ok {
		return memoEntry{}, false
	}
	m.pos = i + 1
	return m.last[i], true
}

// done ends a read: what it found is what the next one looks in.
func (m *ruleMemo) done() {
	m.last, m.next = m.next, m.last[:0]
	m.pos, m.index = 0, nil
}

// ruleMemos are the ruleMemos of the tables of the last read. A read takes
// those of its tables and gives them back when it succeeds; reads at once
// take none of each other's.
type ruleMemos struct {
	mu sync.Mutex
	m  map[tableKey]*ruleMemo
}

func (ms *ruleMemos) take(t tableKey) *ruleMemo {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[t]
	delete(ms.m, t)
	if m == nil {
		m = &ruleMemo{}
	}
	return m
}

// put keeps the memos of a read's tables, and forgets those of tables it
// did not read.
func (ms *ruleMemos) put(tables []tableKey, memos []*ruleMemo) {
	m := make(map[tableKey]*ruleMemo, len(tables))
	for i, t := range tables {
		memos[i].done()
		m[t] = memos[i]
	}
	ms.mu.Lock()
	ms.m = m
	ms.mu.Unlock()
}
