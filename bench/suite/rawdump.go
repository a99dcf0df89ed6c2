package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/nfdump"
)

// rawDump makes the netlink dumps that the nftables collector's Read makes
// (the rules of each table, the counter objects, the sets and, for the set
// cases, the bench sets' elements), as it makes them (package nfdump, its
// receive buffer, the tables' and the sets' dumps spread over as many
// sockets as it opens), and decodes nothing. Its time is what the kernel
// and the copy to user space cost, the floor of a scrape. Comparing it
// with the collector's Read gives the decode share.
func rawDump(nsPath string, bufSize int, tables, setElems []setRef) (msgs int, err error) {
	return rawDumps(nsPath, bufSize, unix.AF_UNSPEC, tables, setElems)
}

// rawRuleDump is the bare dump of the rules of one family alone: what
// iptables-nft-save asks the kernel for (family ip).
func rawRuleDump(nsPath string, bufSize int, family uint8) (msgs int, err error) {
	return rawDumps(nsPath, bufSize, family, nil, nil)
}

// rawDumps makes the collector's dumps: the rules of each of tables (as the
// collector dumps them, one table at a time; all of the family's rules at
// once when tables is nil, and nothing else), the named counters, the sets
// and the elements of setElems.
func rawDumps(nsPath string, bufSize int, family uint8, tables, setElems []setRef) (int, error) {
	ns, err := os.Open(nsPath)
	if err != nil {
		return 0, err
	}
	defer ns.Close()
	var conns []*nfdump.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// As many sockets as the collector opens (nftables.maxDumpers).
	for range min(runtime.GOMAXPROCS(0), 4) {
		c, err := nfdump.Dial(int(ns.Fd()), bufSize)
		if err != nil {
			return 0, fmt.Errorf("netlink socket: %w", err)
		}
		conns = append(conns, c)
	}
	var msgs atomic.Int64
	count := func(uint8, []byte) error { msgs.Add(1); return nil }
	if tables == nil {
		err := conns[0].Dump(unix.NFT_MSG_GETRULE, family, nil, count)
		return int(msgs.Load()), err
	}
	err = spread(conns, len(tables), func(c *nfdump.Conn, i int) error {
		return c.Dump(unix.NFT_MSG_GETRULE, tables[i].family, nfdump.StringAttr(unix.NFTA_RULE_TABLE, tables[i].table), count)
	})
	if err != nil {
		return int(msgs.Load()), err
	}
	objType := nfdump.Attr(unix.NFTA_OBJ_TYPE, binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER))
	if err := conns[0].Dump(unix.NFT_MSG_GETOBJ, family, objType, count); err != nil {
		return int(msgs.Load()), err
	}
	if err := conns[0].Dump(unix.NFT_MSG_GETSET, family, nil, count); err != nil {
		return int(msgs.Load()), err
	}
	err = spread(conns, len(setElems), func(c *nfdump.Conn, i int) error {
		se := setElems[i]
		req := append(nfdump.StringAttr(unix.NFTA_SET_ELEM_LIST_TABLE, se.table), nfdump.StringAttr(unix.NFTA_SET_ELEM_LIST_SET, se.name)...)
		return c.Dump(unix.NFT_MSG_GETSETELEM, se.family, req, count)
	})
	return int(msgs.Load()), err
}

// spread runs jobs 0 to n-1 on the sockets, one at a time on each.
func spread(conns []*nfdump.Conn, n int, job func(c *nfdump.Conn, i int) error) error {
	var next atomic.Int64
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && errs[w] == nil; i = int(next.Add(1) - 1) {
				errs[w] = job(c, i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// setRef names a table, or a set for an element dump.
type setRef struct {
	family      uint8
	table, name string
}
