package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/backends"
)

// primeDumpBuffer makes the kernel send dumps in chunks of size bytes.
//
// The kernel sizes each dump chunk after the largest buffer that recvmsg has
// been given on the socket (capped at 32 KiB), and restarts its walk of the
// ruleset for every chunk, so a dump costs O(n²/chunk). mdlayher/netlink
// receives into a page (4 KiB) unless a message is larger. One receive with
// a large buffer, of the reply to a harmless GETGEN request, is enough: the
// kernel remembers the size for the life of the socket.
func primeDumpBuffer(size int) func(*netlink.Conn) error {
	return func(c *netlink.Conn) error {
		req := netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
				Flags: netlink.Request,
			},
			Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
		}
		if _, err := c.Send(req); err != nil {
			return fmt.Errorf("priming the dump buffer: %w", err)
		}
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("priming the dump buffer: %w", err)
		}
		buf := make([]byte, size)
		var recvErr error
		err = raw.Read(func(fd uintptr) bool {
			_, _, recvErr = unix.Recvfrom(int(fd), buf, 0)
			return recvErr != unix.EAGAIN
		})
		if err == nil {
			err = recvErr
		}
		if err != nil {
			return fmt.Errorf("priming the dump buffer: %w", err)
		}
		return nil
	}
}

// readCounterObjects dumps the named counter objects of every table and adds
// those whose comment carries a tag. google/nftables decodes objects but
// drops their user data, where the comment is, so this request is ours.
func readCounterObjects(nsFd, bufSize int, reading *backends.Reading) error {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return err
	}
	defer c.Close()
	if bufSize > 0 {
		if err := primeDumpBuffer(bufSize)(c); err != nil {
			return err
		}
	}
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Uint32(unix.NFTA_OBJ_TYPE, unix.NFT_OBJECT_COUNTER)
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETOBJ),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		obj, err := parseCounterObject(m.Data)
		if err != nil {
			return err
		}
		if obj.typ != unix.NFT_OBJECT_COUNTER || !obj.hasComment {
			continue
		}
		family := FamilyName(obj.family)
		reading.Add(family+" "+obj.table+" counter "+obj.name, obj.comment, family, obj.packets, obj.bytes)
	}
	return nil
}

// nftaObjUserdata is NFTA_OBJ_USERDATA, which x/sys/unix does not name.
const nftaObjUserdata = 8

type counterObject struct {
	family         nftables.TableFamily
	table, name    string
	typ            uint32
	packets, bytes uint64
	comment        string
	hasComment     bool
}

// parseCounterObject decodes one NFT_MSG_NEWOBJ message: the nfgenmsg
// header, then the object's attributes.
func parseCounterObject(b []byte) (counterObject, error) {
	var o counterObject
	if len(b) < 4 {
		return o, errors.New("object message shorter than its header")
	}
	o.family = nftables.TableFamily(b[0])
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		return o, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_OBJ_TABLE:
			o.table = ad.String()
		case unix.NFTA_OBJ_NAME:
			o.name = ad.String()
		case unix.NFTA_OBJ_TYPE:
			o.typ = ad.Uint32()
		case unix.NFTA_OBJ_DATA:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					switch nd.Type() {
					case unix.NFTA_COUNTER_BYTES:
						o.bytes = nd.Uint64()
					case unix.NFTA_COUNTER_PACKETS:
						o.packets = nd.Uint64()
					}
				}
				return nil
			})
		case nftaObjUserdata:
			o.comment, o.hasComment = commentFromUserData(ad.Bytes())
		}
	}
	return o, ad.Err()
}

// containsErrno reports whether err, or its text where a library flattened
// it with %v, carries errno.
func containsErrno(err error, errno syscall.Errno) bool {
	return err != nil && strings.Contains(err.Error(), errno.Error())
}
