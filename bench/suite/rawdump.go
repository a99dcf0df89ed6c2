package main

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// rawDump makes the netlink dumps that the nftables backend's Read makes
// (all rules, the counter objects, the sets and, for the set cases, the
// bench set's elements), with the backend's receive buffer, and decodes
// nothing: it only walks the message headers to find the end of each dump.
// Its time is what the kernel and the copy to user space cost, the floor
// of a scrape. Comparing it with the backend's Read gives the decode share.
func rawDump(nsPath string, bufSize int, tables, setElems []setRef) (msgs int, err error) {
	return rawDumps(nsPath, bufSize, unix.AF_UNSPEC, tables, setElems)
}

// rawRuleDump is the bare dump of the rules of one family alone: what
// iptables-nft-save asks the kernel for (family ip).
func rawRuleDump(nsPath string, bufSize int, family uint8) (msgs int, err error) {
	return rawDumps(nsPath, bufSize, family, nil, nil)
}

// rawDumps makes the backend's dumps: the rules of each of tables (as the
// backend dumps them, one table at a time; all of the family's rules at
// once when tables is nil, and nothing else), the named counters, the sets
// and the elements of setElems.
func rawDumps(nsPath string, bufSize int, family uint8, tables, setElems []setRef) (msgs int, err error) {
	rulesOnly := tables == nil
	fd := -1
	err = netns.Do(nsPath, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	d := &rawDumper{fd: fd, buf: make([]byte, bufSize)}

	objType := nlattr(unix.NFTA_OBJ_TYPE, binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER))
	queries := []struct {
		typ    uint16
		family uint8
		attrs  []byte
	}{
		{unix.NFT_MSG_GETRULE, family, nil},
		{unix.NFT_MSG_GETOBJ, family, objType},
		{unix.NFT_MSG_GETSET, family, nil},
	}
	if rulesOnly {
		queries = queries[:1]
	}
	if !rulesOnly {
		queries = queries[1:]
		for _, t := range tables {
			n, err := d.dump(unix.NFT_MSG_GETRULE, t.family, nlattr(unix.NFTA_RULE_TABLE, append([]byte(t.table), 0)))
			if err != nil {
				return msgs, err
			}
			msgs += n
		}
	}
	for _, q := range queries {
		n, err := d.dump(q.typ, q.family, q.attrs)
		if err != nil {
			return msgs, err
		}
		msgs += n
	}
	for _, se := range setElems {
		req := append(nlattr(unix.NFTA_SET_ELEM_LIST_TABLE, append([]byte(se.table), 0)),
			nlattr(unix.NFTA_SET_ELEM_LIST_SET, append([]byte(se.name), 0))...)
		n, err := d.dump(unix.NFT_MSG_GETSETELEM, se.family, req)
		if err != nil {
			return msgs, err
		}
		msgs += n
	}
	return msgs, nil
}

// setRef names a set for an element dump.
type setRef struct {
	family      uint8
	table, name string
}

type rawDumper struct {
	fd  int
	buf []byte
	seq uint32
}

// dump sends one dump request and receives its answer to the end, counting
// the messages.
func (d *rawDumper) dump(msgType uint16, family uint8, attrs []byte) (msgs int, err error) {
	d.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+4+len(attrs))
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.NFNL_SUBSYS_NFTABLES<<8|msgType)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], d.seq)
	req[16], req[17] = family, unix.NFNETLINK_V0
	copy(req[20:], attrs)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sending dump request: %w", err)
	}
	for {
		n, _, rflags, _, err := unix.Recvmsg(d.fd, d.buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return msgs, fmt.Errorf("receiving dump: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return msgs, fmt.Errorf("a dump message is larger than the %d-byte buffer", len(d.buf))
		}
		b := d.buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return msgs, fmt.Errorf("malformed netlink message of %d bytes in %d", l, len(b))
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			seq := binary.NativeEndian.Uint32(b[8:12])
			payload := b[unix.NLMSG_HDRLEN:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			if seq != d.seq {
				continue
			}
			switch typ {
			case unix.NLMSG_DONE:
				return msgs, nil
			case unix.NLMSG_ERROR:
				if len(payload) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno != 0 {
						return msgs, syscall.Errno(-errno)
					}
				}
				continue
			}
			msgs++
		}
	}
}

func nlattr(typ uint16, val []byte) []byte {
	l := 4 + len(val)
	b := make([]byte, (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1))
	binary.NativeEndian.PutUint16(b[0:2], uint16(l))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], val)
	return b
}
