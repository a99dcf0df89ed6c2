package main

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

// rawDump makes the netlink dumps that the nftables backend's Read makes
// (the rules of each table, the counter objects, the sets and, for the set
// cases, the bench sets' elements), on the backend's socket with its
// receive buffer (package nfdump), and decodes nothing. Its time is what
// the kernel and the copy to user space cost, the floor of a scrape.
// Comparing it with the backend's Read gives the decode share.
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
	ns, err := os.Open(nsPath)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	c, err := nfdump.Dial(int(ns.Fd()), bufSize)
	if err != nil {
		return 0, fmt.Errorf("netlink socket: %w", err)
	}
	defer c.Close()
	count := func(uint8, []byte) error { msgs++; return nil }
	if tables == nil {
		return msgs, c.Dump(unix.NFT_MSG_GETRULE, family, nil, count)
	}
	for _, t := range tables {
		if err := c.Dump(unix.NFT_MSG_GETRULE, t.family, nfdump.StringAttr(unix.NFTA_RULE_TABLE, t.table), count); err != nil {
			return msgs, err
		}
	}
	objType := nfdump.Attr(unix.NFTA_OBJ_TYPE, binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER))
	if err := c.Dump(unix.NFT_MSG_GETOBJ, family, objType, count); err != nil {
		return msgs, err
	}
	if err := c.Dump(unix.NFT_MSG_GETSET, family, nil, count); err != nil {
		return msgs, err
	}
	for _, se := range setElems {
		req := append(nfdump.StringAttr(unix.NFTA_SET_ELEM_LIST_TABLE, se.table), nfdump.StringAttr(unix.NFTA_SET_ELEM_LIST_SET, se.name)...)
		if err := c.Dump(unix.NFT_MSG_GETSETELEM, se.family, req, count); err != nil {
			return msgs, err
		}
	}
	return msgs, nil
}

// setRef names a table, or a set for an element dump.
type setRef struct {
	family      uint8
	table, name string
}
