package flow

import (
	"encoding/binary"
	"net/netip"
)

// Builders of hand-made NetFlow datagrams, as the RFCs lay them out:
// NetFlow v5 (Cisco's format), v9 (RFC 3954) and IPFIX (RFC 7011).

type v5Record struct {
	src, dst         string
	srcPort, dstPort uint16
	proto            uint8
	in, out          uint16
	packets, bytes   uint32
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func addr(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// v5Packet is a NetFlow v5 datagram; sampling is the header's 16 bits.
func v5Packet(sampling uint16, recs ...v5Record) []byte {
	b := be16(nil, 5)
	b = be16(b, uint16(len(recs)))
	b = be32(b, 1000)       // sysUptime
	b = be32(b, 1700000000) // unix secs
	b = be32(b, 0)          // nsecs
	b = be32(b, 1)          // sequence
	b = append(b, 0, 0)     // engine type, id
	b = be16(b, sampling)
	for _, r := range recs {
		b = append(b, addr(r.src)...)
		b = append(b, addr(r.dst)...)
		b = be32(b, 0) // next hop
		b = be16(b, r.in)
		b = be16(b, r.out)
		b = be32(b, r.packets)
		b = be32(b, r.bytes)
		b = be32(b, 900) // first
		b = be32(b, 999) // last
		b = be16(b, r.srcPort)
		b = be16(b, r.dstPort)
		b = append(b, 0, 0, r.proto, 0) // pad, flags, proto, tos
		b = be16(b, 0)
		b = be16(b, 0)
		b = append(b, 0, 0)
		b = be16(b, 0)
	}
	return b
}

// field is a template field: type, length, and for IPFIX an enterprise
// number (0: none).
type field struct {
	typ, length uint16
	pen         uint32
}

// ipv4Fields is a template like softflowd's, in a shuffled order.
var ipv4Fields = []field{{8, 4, 0}, {12, 4, 0}, {1, 4, 0}, {2, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {10, 2, 0}, {14, 2, 0}}

// ipv6Fields carries 8-byte counters.
var ipv6Fields = []field{{27, 16, 0}, {28, 16, 0}, {1, 8, 0}, {2, 8, 0}, {4, 1, 0}, {7, 2, 0}, {11, 2, 0}, {10, 4, 0}, {14, 4, 0}}

// flowRecord is the values of a record, by field type.
type flowRecord map[uint16]any

// encode writes a record in a template's layout: addresses as strings,
// numbers as uint64 in the field's length.
func (r flowRecord) encode(fields []field) []byte {
	var b []byte
	for _, f := range fields {
		v := r[f.typ]
		if f.pen != 0 {
			v = r[f.typ|0x8000]
		}
		switch v := v.(type) {
		case string:
			b = append(b, addr(v)...)
		default:
			n, _ := v.(uint64)
			for i := int(f.length) - 1; i >= 0; i-- {
				b = append(b, byte(n>>(8*i)))
			}
		}
	}
	return b
}

// set frames a set (v9: flowset) with its id and length.
func set(id uint16, body []byte) []byte {
	b := be16(nil, id)
	b = be16(b, uint16(4+len(body)))
	return append(b, body...)
}

// templateSet is a (v9: 0, IPFIX: 2) template set with one template.
func templateSet(version, id uint16, fields []field) []byte {
	b := be16(nil, id)
	b = be16(b, uint16(len(fields)))
	for _, f := range fields {
		t := f.typ
		if f.pen != 0 {
			t |= 0x8000
		}
		b = be16(b, t)
		b = be16(b, f.length)
		if f.pen != 0 {
			b = be32(b, f.pen)
		}
	}
	setID := uint16(0)
	if version == 10 {
		setID = 2
	}
	return set(setID, b)
}

// optionsTemplateSet announces an options template with scope and option
// fields, in v9's (lengths in bytes) or IPFIX's (field counts) layout.
func optionsTemplateSet(version, id uint16, scopes, options []field) []byte {
	b := be16(nil, id)
	if version == 10 {
		b = be16(b, uint16(len(scopes)+len(options)))
		b = be16(b, uint16(len(scopes)))
	} else {
		b = be16(b, uint16(4*len(scopes)))
		b = be16(b, uint16(4*len(options)))
	}
	for _, f := range append(append([]field{}, scopes...), options...) {
		b = be16(b, f.typ)
		b = be16(b, f.length)
	}
	setID := uint16(1)
	if version == 10 {
		setID = 3
	}
	return set(setID, b)
}

// dataSet frames records written with the template id's fields.
func dataSet(id uint16, fields []field, recs ...flowRecord) []byte {
	var body []byte
	for _, r := range recs {
		body = append(body, r.encode(fields)...)
	}
	return set(id, body)
}

// message is a v9 or IPFIX datagram of the sets, for the observation
// domain (v9: source id).
func message(version uint16, domain uint32, sets ...[]byte) []byte {
	var body []byte
	for _, s := range sets {
		body = append(body, s...)
	}
	b := be16(nil, version)
	if version == 10 {
		b = be16(b, uint16(16+len(body)))
		b = be32(b, 1700000000) // export time
		b = be32(b, 1)          // sequence
		b = be32(b, domain)
	} else {
		b = be16(b, uint16(len(sets))) // count: records; a set each here
		b = be32(b, 1000)              // uptime
		b = be32(b, 1700000000)
		b = be32(b, 1)
		b = be32(b, domain)
	}
	return append(b, body...)
}

func rec4(src, dst string, srcPort, dstPort uint16, proto uint8, packets, bytes uint64) flowRecord {
	return flowRecord{8: src, 12: dst, 7: uint64(srcPort), 11: uint64(dstPort), 4: uint64(proto), 2: packets, 1: bytes, 10: uint64(1), 14: uint64(2)}
}

func rec6(src, dst string, packets, bytes uint64) flowRecord {
	return flowRecord{27: src, 28: dst, 4: uint64(17), 7: uint64(4000), 11: uint64(53), 2: packets, 1: bytes, 10: uint64(1), 14: uint64(2)}
}
