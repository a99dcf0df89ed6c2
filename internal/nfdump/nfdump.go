// Package nfdump runs nftables dump requests over netlink and hands each
// reply message to a callback straight from a reused receive buffer. It
// holds the requests of a read (request.go) and spreads dumps over several
// sockets (spread.go). The nftables collector reads the kernel with it; the
// bench suite makes the same dumps with it, decoding nothing, to measure
// what the kernel's dumps cost alone.
//
// The kernel sizes each dump chunk after the largest buffer that recvmsg
// has been given on the socket (capped at 32 KiB) and restarts its walk of
// the ruleset for every chunk, so a dump costs O(n²/chunk). mdlayher/netlink
// peeks with one page and grows by doubling, which keeps chunks at 4 KiB;
// receiving into our own large buffer makes them 32 KiB.
package nfdump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ErrInterrupted means the ruleset changed while the kernel dumped it; the
// reader starts again.
var ErrInterrupted = errors.New("the ruleset changed during the dump")

// Conn is a netlink socket for nftables dumps.
type Conn struct {
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
}

// Dial opens a socket in the network namespace of nsFd (0: the caller's)
// that receives into a buffer of bufSize bytes.
func Dial(nsFd, bufSize int) (*Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Conn{conn: c, raw: raw, buf: make([]byte, bufSize)}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.conn.Close() }

// SetDeadline bounds the dumps' sends and receives.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Generation is the ruleset generation of the first reply on the socket,
// and false before one.
func (c *Conn) Generation() (uint16, bool) { return c.gen, c.hasGen }

// Dump sends a dump request (see Request) and calls fn with the family and
// the attributes of each reply message. The attributes point into the
// receive buffer, which the next chunk overwrites. It returns
// ErrInterrupted when the kernel marks the dump interrupted or a reply is
// of another generation than the socket's first.
func (c *Conn) Dump(r Request, fn func(family uint8, attrs []byte) error) error {
	c.seq++
	if err := c.send(r); err != nil {
		return fmt.Errorf("sending dump request: %w", err)
	}
	interrupted := false
	for {
		b, err := c.receive()
		if err != nil {
			return err
		}
		done, err := c.chunk(b, &interrupted, fn)
		switch {
		case err != nil:
			return err
		case done && interrupted:
			return ErrInterrupted
		case done:
			return nil
		}
	}
}

// send sends the request of sequence number c.seq.
func (c *Conn) send(r Request) error {
	req := make([]byte, unix.NLMSG_HDRLEN+4+len(r.Attrs))
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.NFNL_SUBSYS_NFTABLES<<8|r.Type)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], c.seq)
	req[16], req[17] = r.Family, unix.NFNETLINK_V0
	copy(req[20:], r.Attrs)
	var opErr error
	err := c.raw.Write(func(fd uintptr) bool {
		opErr = unix.Sendto(int(fd), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return opErr != unix.EAGAIN && opErr != unix.EINTR
	})
	if err == nil {
		err = opErr
	}
	return err
}

// receive receives the next chunk of replies into the buffer.
func (c *Conn) receive() ([]byte, error) {
	var n, rflags int
	var opErr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rflags, _, opErr = unix.Recvmsg(int(fd), c.buf, nil, 0)
		return opErr != unix.EAGAIN && opErr != unix.EINTR
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return nil, fmt.Errorf("receiving dump: %w", err)
	}
	if rflags&unix.MSG_TRUNC != 0 {
		return nil, fmt.Errorf("a dump message is larger than the %d-byte receive buffer", len(c.buf))
	}
	return c.buf[:n], nil
}

// chunk hands the replies in b to the request of sequence number c.seq to
// fn, notes in interrupted whether one says the ruleset changed, and tells
// whether the dump is done.
func (c *Conn) chunk(b []byte, interrupted *bool, fn func(family uint8, attrs []byte) error) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("malformed netlink message of %d bytes in %d", l, len(b))
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		seq := binary.NativeEndian.Uint32(b[8:12])
		payload := b[unix.NLMSG_HDRLEN:l]
		b = b[min(align(l, unix.NLMSG_ALIGNTO), len(b)):]
		if seq != c.seq {
			continue // a late reply to an earlier request
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			*interrupted = true
		}
		switch typ {
		case unix.NLMSG_DONE:
			if len(payload) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno < 0 {
					return true, syscall.Errno(-errno)
				}
			}
			return true, nil
		case unix.NLMSG_ERROR:
			if len(payload) < 4 {
				return false, errors.New("truncated netlink error message")
			}
			if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno != 0 {
				return false, syscall.Errno(-errno)
			}
			continue
		case unix.NLMSG_NOOP:
			continue
		}
		if len(payload) < 4 {
			return false, errors.New("nftables message shorter than its header")
		}
		if gen := binary.BigEndian.Uint16(payload[2:4]); !c.hasGen {
			c.gen, c.hasGen = gen, true
		} else if gen != c.gen {
			*interrupted = true
		}
		if err := fn(payload[0], payload[4:]); err != nil {
			return false, err
		}
	}
	return false, nil
}

func align(n, to int) int { return (n + to - 1) &^ (to - 1) }
