package nft

import "sync"

// A rule's content (contentOf) is FNV-1a over its expressions, a byte at a
// time: it was most of a read's decode. A table's rules are mostly the
// same from one read to the next, so a read keeps each tagged rule's
// content beside a check of the bytes it hashed (rule.check, maphash over
// the same bytes, ten times faster), and the next read takes the content
// of a rule whose check it finds there: at the rule's place in the last
// read when nothing moved, or else by the check. A rule replaced under its
// handle ("nft replace rule … handle N") checks otherwise, and its content
// is hashed again: it follows the new expressions as without the memo.

// memoEntry is a tagged rule's content in one read, and its check.
type memoEntry struct {
	check, content uint64
}

// ruleMemo is the contents of one table's tagged rules in the last read,
// in the dump's order, and those of the read under way.
type ruleMemo struct {
	last, next []memoEntry
	// byCheck finds last's contents by check; made at the first rule
	// not at its place.
	byCheck map[uint64]uint64
}

// content is the content of r, taken from the last read when a rule there
// had its check, or else hashed; the read under way keeps it.
func (m *ruleMemo) content(r *rule) uint64 {
	e := memoEntry{check: r.check}
	if i := len(m.next); i < len(m.last) && m.last[i].check == r.check {
		e.content = m.last[i].content
	} else if c, ok := m.lastByCheck()[r.check]; ok {
		e.content = c
	} else {
		e.content = contentOf(r)
	}
	m.next = append(m.next, e)
	return e.content
}

func (m *ruleMemo) lastByCheck() map[uint64]uint64 {
	if m.byCheck == nil {
		m.byCheck = make(map[uint64]uint64, len(m.last))
		for _, e := range m.last {
			m.byCheck[e.check] = e.content
		}
	}
	return m.byCheck
}

// done ends a read: what it found is what the next one looks in.
func (m *ruleMemo) done() {
	m.last, m.next = m.next, m.last[:0]
	m.byCheck = nil
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
