package nfdump

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Request is one dump: what to dump (an NFT_MSG_GET* message type), of
// which family (AF_UNSPEC: every family), narrowed by attributes. The
// functions below make the requests of the nftables collector's read,
// which the bench suite's raw dump makes again without decoding.
type Request struct {
	Type   uint16
	Family uint8
	Attrs  []byte
}

// Tables lists the tables of every family.
func Tables() Request {
	return Request{Type: unix.NFT_MSG_GETTABLE, Family: unix.AF_UNSPEC}
}

// Rules dumps the rules of one table, or of every table of the family
// when table is "".
func Rules(family uint8, table string) Request {
	r := Request{Type: unix.NFT_MSG_GETRULE, Family: family}
	if table != "" {
		r.Attrs = stringAttr(unix.NFTA_RULE_TABLE, table)
	}
	return r
}

// Counters dumps the named counters of every family: the objects of type
// counter, which the kernel picks out itself.
func Counters() Request {
	return Request{Type: unix.NFT_MSG_GETOBJ, Family: unix.AF_UNSPEC,
		Attrs: attr(unix.NFTA_OBJ_TYPE, binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER))}
}

// Sets dumps the sets of every family, without their elements.
func Sets() Request {
	return Request{Type: unix.NFT_MSG_GETSET, Family: unix.AF_UNSPEC}
}

// Elements dumps the elements of one set.
func Elements(family uint8, table, set string) Request {
	return Request{Type: unix.NFT_MSG_GETSETELEM, Family: family,
		Attrs: append(stringAttr(unix.NFTA_SET_ELEM_LIST_TABLE, table), stringAttr(unix.NFTA_SET_ELEM_LIST_SET, set)...)}
}

// attr encodes an attribute of a request.
func attr(typ uint16, v []byte) []byte {
	l := 4 + len(v)
	b := make([]byte, align(l, unix.NLA_ALIGNTO))
	binary.NativeEndian.PutUint16(b[0:2], uint16(l))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], v)
	return b
}

// stringAttr encodes a NUL-terminated string attribute of a request.
func stringAttr(typ uint16, v string) []byte { return attr(typ, append([]byte(v), 0)) }
