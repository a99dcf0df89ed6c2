// Package flow counts traffic from the flow records that routers export
// (NetFlow v5, v9 and IPFIX, decoded by goflow2's decoders) into the same
// series as the kernel's rules and sets: the entries of rules.yaml whose
// source is flow. It receives datagrams, decodes them with each router's
// templates and sampling rate, attributes each flow to the address entry
// that holds its source (out) or destination (in), longest prefix first,
// and to the tag entries it matches, and keeps cumulative counters. As a
// collector.Collector it hands them to the exporter on every scrape.
package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/config"
)

// maxRouters bounds the routers the collector keeps state for
// (templates, sampling rates, telemetry series). Datagrams from further
// source addresses are counted under router="other" and not decoded.
const maxRouters = 256

// otherRouter labels the telemetry of the routers past maxRouters.
const otherRouter = "other"

// Collector receives, decodes, attributes and counts flows. It is safe for
// concurrent use: one mutex guards everything, held for a datagram's
// decoding and counting, and for a scrape's copy.
type Collector struct {
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	plan    *plan
	routers map[netip.Addr]*routerState
	order   []netip.Addr // of routers, as first seen
	other   telemetry
	scratch decoded
	logged  map[string]bool // decode problems already logged, bounded
}

// routerState is what the collector keeps per router address.
type routerState struct {
	dec routerDecoder
	tel telemetry
}

// telemetry counts what a router sent and what became of it.
type telemetry struct {
	datagrams, datagramBytes uint64
	records                  uint64 // flows decoded
	decodeErrors             uint64 // datagrams dropped as malformed
	unknownTemplate          uint64 // data sets dropped: template not known
	unwatched                uint64 // flows outside every entry
	filtered                 uint64 // flows an entry holds that flow.routers rejects
	ignored                  uint64 // datagrams not decoded: router not listed, or past the cap
}

// New returns a Collector that counts nothing until Configure gives it a
// rules file.
func New(logger *slog.Logger) *Collector {
	return &Collector{
		logger:  logger,
		now:     time.Now,
		plan:    &plan{},
		routers: make(map[netip.Addr]*routerState),
		logged:  make(map[string]bool),
	}
}

// Configure takes the flow entries of a loaded rules file; the managed
// Manager calls it with the same parse that it applied to the kernel.
// Counts of the tags that stay carry over.
func (c *Collector) Configure(f *config.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plan = newPlan(f, c.plan, c.now())
}

// Datagram decodes one datagram from the router at from and counts its
// flows. Malformed datagrams are counted and dropped; they never panic.
func (c *Collector) Datagram(from netip.Addr, data []byte) {
	from = from.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.routers[from]
	if x == nil {
		if len(c.routers) >= maxRouters {
			c.other.datagrams++
			c.other.datagramBytes += uint64(len(data))
			c.other.ignored++
			return
		}
		x = &routerState{}
		c.routers[from] = x
		c.order = append(c.order, from)
	}
	x.tel.datagrams++
	x.tel.datagramBytes += uint64(len(data))
	var flt *filter
	if c.plan.filters != nil {
		var listed bool
		if flt, listed = c.plan.filters[from]; !listed {
			x.tel.ignored++
			return
		}
	}
	out := &c.scratch
	out.flows, out.unknownTemplate = out.flows[:0], 0
	if err := safeDecode(&x.dec, data, out); err != nil {
		x.tel.decodeErrors++
		c.logOnce(from, err)
		return
	}
	x.tel.unknownTemplate += uint64(out.unknownTemplate)
	x.tel.records += uint64(len(out.flows))
	now := c.now()
	for i := range out.flows {
		switch c.plan.count(&out.flows[i], flt, now) {
		case unwatched:
			x.tel.unwatched++
		case filtered:
			x.tel.filtered++
		}
	}
}

// decoderPanics counts the panics safeDecode recovered from; the fuzz test
// requires none.
var decoderPanics atomic.Uint64

// safeDecode turns a panic in the decoders into an error: a datagram, of
// whatever content, must not end the process.
func safeDecode(d *routerDecoder, data []byte, out *decoded) (err error) {
	defer func() {
		if p := recover(); p != nil {
			decoderPanics.Add(1)
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return d.decode(data, out)
}

// maxLogged bounds the distinct decode errors logged at warning level.
const maxLogged = 256

// logOnce logs a decode error at warning level the first time an
// router causes it, and at debug level after.
func (c *Collector) logOnce(from netip.Addr, err error) {
	key := from.String() + "\x00" + err.Error()
	if c.logged[key] || len(c.logged) >= maxLogged {
		c.logger.Debug("flow datagram dropped", "router", from, "err", err)
		return
	}
	c.logged[key] = true
	c.logger.Warn("flow datagram dropped: malformed (logged once per router and error)", "router", from, "err", err)
}

// Read implements collector.Collector: the tag entries counted from flows as
// Records, the address entries as Sets, in file order. Counts are
// cumulative since the collector started.
func (c *Collector) Read(ctx context.Context) (collector.Reading, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var r collector.Reading
	for _, t := range c.plan.records {
		r.Records = append(r.Records, collector.Record{
			Tag: t.tag, Direction: t.direction, Family: tableFamily, Description: t.description,
			Packets: t.packets, Bytes: t.bytes, ID: collector.ID("flows " + t.tag),
		})
	}
	for _, s := range c.plan.sets {
		if s.timeout > 0 {
			s.sweep(now)
		}
		set := collector.AddressSet{
			Tag: s.tag, Direction: s.direction, Description: s.description, Family: s.family,
			Where:    fmt.Sprintf("flows %s %s %s", s.tag, s.family, s.direction),
			Capacity: uint32(s.capacity),
			Elements: make([]collector.AddressCount, 0, len(s.elems)),
			Overflow: &collector.Counter{Packets: s.overflow.Packets, Bytes: s.overflow.Bytes},
		}
		for a, e := range s.elems {
			set.Elements = append(set.Elements, collector.AddressCount{Addr: a, Packets: e.packets, Bytes: e.bytes})
		}
		r.Sets = append(r.Sets, set)
	}
	return r, nil
}

// receiveBuffer is the socket buffer asked for: bursts of export
// datagrams wait there while a scrape holds the lock.
const receiveBuffer = 4 << 20

// Listen opens the UDP socket the collector receives on.
func Listen(address string) (*net.UDPConn, error) {
	a, err := net.ResolveUDPAddr("udp", address)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", a)
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(receiveBuffer) // the system's limit applies
	return conn, nil
}

// Serve receives datagrams on conn until it is closed.
func (c *Collector) Serve(conn *net.UDPConn) error {
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		c.Datagram(from.Addr(), buf[:n])
	}
}
