package nft

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/collector"
)

// rule is what the exporter needs of one NFT_MSG_NEWRULE message. The
// slices point into the receive buffer.
type rule struct {
	table, chain   []byte
	comment        []byte
	hasComment     bool
	packets, bytes uint64
	hasCounter     bool
	handle         uint64
	// udata and exprs are what contentOf hashes, and check their hash
	// by a cheap hash of the same bytes (see ruleMemo).
	udata, exprs []byte
	check        uint64
}

// stateful are the expressions whose data changes as packets pass; they
// are left out of a rule's content.
func stateful(name []byte) bool {
	switch string(name) {
	case "counter", "quota", "last", "limit", "connlimit":
		return true
	}
	return false
}

// checkSeed seeds the hash that checks a rule's content (rule.check): any
// seed does, as long as it stays for the process.
var checkSeed = maphash.MakeSeed()

// parseRule decodes a rule's attributes: its table and chain, its comment
// from user data or else from an xt comment match, and its first counter
// expression (the one "nft add rule … counter" and iptables-nft create).
// It hashes what contentOf hashes with maphash, which costs a tenth of
// FNV-1a, into check.
func parseRule(b []byte) (rule, error) {
	var r rule
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_RULE_TABLE:
			r.table = cstring(a.val)
		case unix.NFTA_RULE_CHAIN:
			r.chain = cstring(a.val)
		case unix.NFTA_RULE_EXPRESSIONS:
			r.exprs = a.val
		case unix.NFTA_RULE_USERDATA:
			r.udata = a.val
		case unix.NFTA_RULE_HANDLE:
			r.handle, _ = be64(a.val)
		}
	}
	if a.err != nil {
		return r, a.err
	}
	r.comment, r.hasComment = commentFromUserData(r.udata, udataComment)
	var h maphash.Hash
	h.SetSeed(checkSeed)
	h.Write(r.udata)
	list := attrs{b: r.exprs}
	for list.next() {
		if list.typ != unix.NFTA_LIST_ELEM {
			continue
		}
		name, data, err := parseExpr(list.val)
		if err != nil {
			return r, err
		}
		h.Write(identityPart(name, list.val))
		switch string(name) {
		case "counter":
			if !r.hasCounter {
				r.packets, r.bytes, r.hasCounter = parseCounter(data)
			}
		case "match":
			if !r.hasComment {
				r.comment, r.hasComment = xtComment(data)
			}
		}
	}
	r.check = h.Sum64()
	return r, list.err
}

// identityPart is what of an expression (elem, named name) a rule's
// content hashes: all of it, or only the name of a stateful one.
func identityPart(name, elem []byte) []byte {
	if stateful(name) {
		return name
	}
	return elem
}

// contentOf is the hash of what a rule parseRule decoded matches and does,
// without the values of its stateful expressions: its identity across
// reads. It is 64-bit FNV-1a of the user data and the expressions'
// identityParts, which the state file keeps: it must not change.
func contentOf(r *rule) uint64 {
	h := collector.HashMore(collector.ID(""), r.udata)
	list := attrs{b: r.exprs}
	for list.next() {
		if list.typ != unix.NFTA_LIST_ELEM {
			continue
		}
		name, _, _ := parseExpr(list.val) // parseRule checked them
		h = collector.HashMore(h, identityPart(name, list.val))
	}
	return h
}

// parseExpr splits an expression into its name and data.
func parseExpr(b []byte) (name, data []byte, err error) {
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_EXPR_NAME:
			name = cstring(a.val)
		case unix.NFTA_EXPR_DATA:
			data = a.val
		}
	}
	return name, data, a.err
}

// parseCounter reads a counter expression's or object's data.
func parseCounter(b []byte) (packets, bytes uint64, ok bool) {
	var okp, okb bool
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_COUNTER_BYTES:
			bytes, okb = be64(a.val)
		case unix.NFTA_COUNTER_PACKETS:
			packets, okp = be64(a.val)
		}
	}
	return packets, bytes, okp && okb && a.err == nil
}

// xtComment returns the text of an xt "comment" match (struct
// xt_comment_info: a NUL-padded char[256]).
func xtComment(b []byte) ([]byte, bool) {
	var name, info []byte
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_MATCH_NAME:
			name = cstring(a.val)
		case unix.NFTA_MATCH_INFO:
			info = a.val
		}
	}
	if a.err != nil || string(name) != "comment" || info == nil {
		return nil, false
	}
	return cstring(info), true
}

// counterObject is what the exporter needs of one NFT_MSG_NEWOBJ message.
type counterObject struct {
	table, name    []byte
	typ            uint32
	packets, bytes uint64
	comment        []byte
	hasComment     bool
	handle         uint64
}

// NFTA_OBJ_HANDLE and NFTA_OBJ_USERDATA, which x/sys/unix does not name.
const (
	nftaObjHandle   = 6
	nftaObjUserdata = 8
)

func parseCounterObject(b []byte) (counterObject, error) {
	var o counterObject
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_OBJ_TABLE:
			o.table = cstring(a.val)
		case unix.NFTA_OBJ_NAME:
			o.name = cstring(a.val)
		case unix.NFTA_OBJ_TYPE:
			if len(a.val) == 4 {
				o.typ = binary.BigEndian.Uint32(a.val)
			}
		case unix.NFTA_OBJ_DATA:
			o.packets, o.bytes, _ = parseCounter(a.val)
		case nftaObjHandle:
			o.handle, _ = be64(a.val)
		case nftaObjUserdata:
			o.comment, o.hasComment = commentFromUserData(a.val, udataComment)
		}
	}
	return o, a.err
}

// udataComment is the type of the comment entry in rule and object user
// data (NFTNL_UDATA_RULE_COMMENT, NFTNL_UDATA_OBJ_COMMENT); a set's user
// data numbers it udataSetComment.
const udataComment = 0

// commentFromUserData returns the comment held in user data: a list of
// type, length, value entries, the comment (of type commentType)
// NUL-terminated. User data is whatever the tool that wrote the rule put
// there, so a malformed list ends the search rather than panicking.
func commentFromUserData(b []byte, commentType byte) ([]byte, bool) {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return nil, false
		}
		if typ == commentType {
			v, _ := bytes.CutSuffix(b[2:2+n], []byte{0})
			return v, true
		}
		b = b[2+n:]
	}
	return nil, false
}
