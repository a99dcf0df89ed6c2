package nfdump

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestRequests compares each request's attributes with what
// mdlayher/netlink's encoder, which google/nftables builds its messages
// with, makes of the same values.
func TestRequests(t *testing.T) {
	encode := func(fn func(ae *netlink.AttributeEncoder)) []byte {
		ae := netlink.NewAttributeEncoder()
		ae.ByteOrder = binary.BigEndian // nftables' integers are big-endian
		fn(ae)
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		got  Request
		want Request
	}{
		{"tables", Tables(), Request{unix.NFT_MSG_GETTABLE, unix.AF_UNSPEC, nil}},
		{"rules of a table", Rules(unix.NFPROTO_INET, "filter"), Request{unix.NFT_MSG_GETRULE, unix.NFPROTO_INET,
			encode(func(ae *netlink.AttributeEncoder) { ae.String(unix.NFTA_RULE_TABLE, "filter") })}},
		{"rules of a family", Rules(unix.NFPROTO_IPV4, ""), Request{unix.NFT_MSG_GETRULE, unix.NFPROTO_IPV4, nil}},
		{"counters", Counters(), Request{unix.NFT_MSG_GETOBJ, unix.AF_UNSPEC,
			encode(func(ae *netlink.AttributeEncoder) { ae.Uint32(unix.NFTA_OBJ_TYPE, unix.NFT_OBJECT_COUNTER) })}},
		{"sets", Sets(), Request{unix.NFT_MSG_GETSET, unix.AF_UNSPEC, nil}},
		{"elements", Elements(unix.NFPROTO_IPV6, "tbl", "set.12"), Request{unix.NFT_MSG_GETSETELEM, unix.NFPROTO_IPV6,
			encode(func(ae *netlink.AttributeEncoder) {
				ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, "tbl")
				ae.String(unix.NFTA_SET_ELEM_LIST_SET, "set.12")
			})}},
	} {
		if c.got.Type != c.want.Type || c.got.Family != c.want.Family || !bytes.Equal(c.got.Attrs, c.want.Attrs) {
			t.Errorf("%s: got %+v, want %+v", c.name, c.got, c.want)
		}
	}
}
