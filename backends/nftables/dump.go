package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/backends"
)

// errDumpInterrupted means the ruleset changed while the kernel dumped it;
// the reader starts again.
var errDumpInterrupted = errors.New("the ruleset changed during the dump")

// dumper runs nftables dump requests on one netlink socket and hands each
// reply message to a callback, straight from a reused receive buffer.
//
// The kernel sizes each dump chunk after the largest buffer that recvmsg has
// been given on the socket (capped at 32 KiB) and restarts its walk of the
// ruleset for every chunk, so a dump costs O(n²/chunk). mdlayher/netlink
// peeks with one page and grows by doubling, which keeps chunks at 4 KiB;
// receiving into our own large buffer makes them 32 KiB.
type dumper struct {
	conn *netlink.Conn
	raw  syscall.RawConn
	buf  []byte
	seq  uint32
	// gen is the ruleset generation (its low 16 bits, which every reply
	// carries) of the first reply on this socket, and hasGen whether there
	// was one. A reply of another generation means that the ruleset
	// changed between two dumps of one read, which no single dump's
	// NLM_F_DUMP_INTR can tell.
	gen    uint16
	hasGen bool
	// tables holds the handles of the tables that dumpRulesByTable listed.
	// A table made again gets a new handle, while the handles of the rules,
	// sets and objects in it start again from 1: only both together name
	// one kernel object across reads.
	tables map[tableKey]uint64
	// filter narrows the tables whose rules dumpRulesByTable dumps.
	filter backends.Filter
}

type tableKey struct {
	family uint8
	name   string
}

// objectHandle names a rule, set or object of a table across reads: its
// handle within the table, mixed with the table's. 0 when either is unknown.
func (d *dumper) objectHandle(family uint8, table []byte, handle uint64) uint64 {
	t := d.tables[tableKey{family, string(table)}]
	if t == 0 || handle == 0 {
		return 0
	}
	return t<<40 ^ handle
}

// nftaTableHandle is NFTA_TABLE_HANDLE, which x/sys/unix does not name.
const nftaTableHandle = 4

func newDumper(nsFd, bufSize int) (*dumper, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &dumper{conn: c, raw: raw, buf: make([]byte, bufSize)}, nil
}

func (d *dumper) Close() error { return d.conn.Close() }

// dump sends an NFT_MSG_GET* dump request for a family (AF_UNSPEC: every
// family) and calls fn with the family and the attributes of each reply
// message.
func (d *dumper) dump(msgType uint16, family uint8, attrs []byte, fn func(family uint8, attrs []byte) error) error {
	d.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+4+len(attrs))
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.NFNL_SUBSYS_NFTABLES<<8|msgType)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], d.seq)
	req[16], req[17] = family, unix.NFNETLINK_V0
	copy(req[20:], attrs)
	var opErr error
	err := d.raw.Write(func(fd uintptr) bool {
		opErr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return opErr != unix.EAGAIN && opErr != unix.EINTR
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return fmt.Errorf("sending dump request: %w", err)
	}

	interrupted := false
	for {
		var n, rflags int
		err := d.raw.Read(func(fd uintptr) bool {
			n, _, rflags, _, opErr = unix.Recvmsg(int(fd), d.buf, nil, 0)
			return opErr != unix.EAGAIN && opErr != unix.EINTR
		})
		if err == nil {
			err = opErr
		}
		if err != nil {
			return fmt.Errorf("receiving dump: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return fmt.Errorf("a dump message is larger than the %d-byte receive buffer", len(d.buf))
		}
		b := d.buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("malformed netlink message of %d bytes in %d", l, len(b))
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			flags := binary.NativeEndian.Uint16(b[6:8])
			seq := binary.NativeEndian.Uint32(b[8:12])
			payload := b[unix.NLMSG_HDRLEN:l]
			b = b[min(nlmsgAlign(l), len(b)):]
			if seq != d.seq {
				continue // a late reply to an earlier request
			}
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch typ {
			case unix.NLMSG_DONE:
				if len(payload) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno < 0 {
						return syscall.Errno(-errno)
					}
				}
				if interrupted {
					return errDumpInterrupted
				}
				return nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return errors.New("truncated netlink error message")
				}
				if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno != 0 {
					return syscall.Errno(-errno)
				}
				continue
			case unix.NLMSG_NOOP:
				continue
			}
			if len(payload) < 4 {
				return errors.New("nftables message shorter than its header")
			}
			if gen := binary.BigEndian.Uint16(payload[2:4]); !d.hasGen {
				d.gen, d.hasGen = gen, true
			} else if gen != d.gen {
				interrupted = true
			}
			if err := fn(payload[0], payload[4:]); err != nil {
				return err
			}
		}
	}
}

// dumpRulesByTable dumps the rules of every table, one table per dump.
//
// A dump of all rules restarts its walk from the first rule of the first
// table for each chunk, so it costs the square of all the rules; one dump
// per table costs the sum of each table's square. With 10,000 rules in each
// of two tables (native nft and iptables-nft) that halves the kernel's
// work. One dump per chain would cut it further for many small chains, but
// costs a round trip per chain, and iptables-nft hosts have thousands.
func (d *dumper) dumpRulesByTable(fn func(family uint8, attrs []byte) error) error {
	var tables []tableKey
	d.tables = make(map[tableKey]uint64)
	err := d.dump(unix.NFT_MSG_GETTABLE, unix.AF_UNSPEC, nil, func(family uint8, b []byte) error {
		a := attrs{b: b}
		t := tableKey{family: family}
		var handle uint64
		for a.next() {
			switch a.typ {
			case unix.NFTA_TABLE_NAME:
				t.name = string(cstring(a.val))
			case nftaTableHandle:
				handle, _ = be64(a.val)
			}
		}
		tables = append(tables, t)
		d.tables[t] = handle
		return a.err
	})
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !d.filter.Table(FamilyName(nftables.TableFamily(t.family)), t.name) {
			continue // not read: what matters on hosts with huge rulesets
		}
		err := d.dump(unix.NFT_MSG_GETRULE, t.family, stringAttr(unix.NFTA_RULE_TABLE, t.name), fn)
		if errors.Is(err, unix.ENOENT) {
			return errDumpInterrupted // the table went away since the list
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// attrs walks netlink attributes without copying or allocating.
type attrs struct {
	b   []byte
	typ uint16
	val []byte
	err error
}

func (a *attrs) next() bool {
	if len(a.b) < 4 {
		if len(a.b) != 0 {
			a.err = fmt.Errorf("%d stray bytes after the last attribute", len(a.b))
		}
		return false
	}
	l := int(binary.NativeEndian.Uint16(a.b[0:2]))
	if l < 4 || l > len(a.b) {
		a.err = fmt.Errorf("attribute of %d bytes in %d", l, len(a.b))
		return false
	}
	a.typ = binary.NativeEndian.Uint16(a.b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
	a.val = a.b[4:l]
	a.b = a.b[min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(a.b)):]
	return true
}

// cstring is a NUL-terminated attribute value without its NUL.
func cstring(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func be64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
