package datapath

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

const batch = 64 // datagrams a sendmmsg

// sender sends from every source to the receiver, as fast as one thread
// goes, until stopped.
type sender struct {
	stop chan struct{}
	done chan error
	tid  chan int // the sending thread, once it sends
}

func startSender(ns string, cpu int) *sender {
	s := &sender{stop: make(chan struct{}), done: make(chan error, 1), tid: make(chan int, 1)}
	go func() { s.done <- s.loop(ns, cpu) }()
	return s
}

// thread waits until the sender sends and returns its thread id, or
// returns 0 and the reason if the sender stopped.
func (s *sender) thread() (int, error) {
	select {
	case tid := <-s.tid:
		return tid, nil
	case err := <-s.done:
		s.done <- err
		if err == nil {
			err = errors.New("the sender stopped")
		}
		return 0, err
	}
}

// halt stops the sender and returns what made it stop early, if anything.
func (s *sender) halt() error {
	close(s.stop)
	return <-s.done
}

func (s *sender) loop(ns string, cpu int) error {
	return netns.Do(nsPath(ns), func() error {
		// Do keeps this goroutine on its thread until fn returns: pin the
		// thread, and unpin it before the runtime gets it back.
		if cpu >= 0 {
			var old, set unix.CPUSet
			if err := unix.SchedGetaffinity(0, &old); err != nil {
				return err
			}
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				return err
			}
			self := unix.Gettid()
			oldNice, err := unix.Getpriority(unix.PRIO_PROCESS, self)
			if err != nil {
				return err
			}
			// The raw syscall returns 20-nice.
			oldNice = 20 - oldNice
			if err := unix.Setpriority(unix.PRIO_PROCESS, self, nice); err != nil {
				return err
			}
			defer func() {
				if unix.SchedSetaffinity(0, &old) != nil || unix.Setpriority(unix.PRIO_PROCESS, self, oldNice) != nil {
					// A thread stuck on one CPU must not serve other
					// goroutines: keep it locked, so that it ends with this
					// one.
					runtime.LockOSThread()
				}
			}()
		}
		// One connected socket per source: the kernel keeps each one's
		// route, as a real sender's does.
		var conns []*ipv4.PacketConn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		dst := &net.UDPAddr{IP: receiverAddr.Addr().AsSlice(), Port: udpPort}
		for _, src := range sources {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: src.AsSlice()}, dst)
			if err != nil {
				return err
			}
			conns = append(conns, ipv4.NewPacketConn(c))
		}
		msgs := make([]ipv4.Message, batch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, payload)}
		}
		s.tid <- unix.Gettid()
		for {
			select {
			case <-s.stop:
				return nil
			default:
			}
			for _, c := range conns {
				if _, err := c.WriteBatch(msgs, 0); err != nil && !transient(err) {
					return fmt.Errorf("sending: %w", err)
				}
			}
		}
	})
}

// transient errors leave the sender going: a full queue, or a port
// unreachable from an earlier packet.
func transient(err error) bool {
	return errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ECONNREFUSED)
}

// measurement is one run of one case.
type measurement struct {
	// pps is the router core's rate: packets the receiver got per second
	// of the router thread's CPU time (per second of wall time when
	// nothing is pinned). wallPPS is per second of wall time.
	pps, wallPPS float64
	// routerNs is the router thread's CPU time per forwarded packet, and
	// routerBusy and senderBusy the share of the window each thread ran:
	// they tell which side limits the rate.
	routerNs               float64
	routerBusy, senderBusy float64
	dropShare              float64 // of what reached the router's ring, dropped because it was full
	received, accounted    uint64  // packets, over the whole run, warm-up included
}

// window waits for the warm-up, then counts for d.
func (e *env) window(l *lane, s *sender, warmup, d time.Duration, m *measurement) error {
	tid, err := s.thread()
	if err != nil {
		return err
	}
	time.Sleep(warmup)
	type sample struct {
		at             time.Time
		rx             uint64
		router, sender time.Duration
	}
	take := func() (sample, error) {
		var x sample
		st, err := stats(l.rcv, l.rcvIf)
		if err != nil {
			return x, err
		}
		x.at, x.rx = time.Now(), st.rxPackets
		for _, pid := range l.napi {
			t, err := cpuTime(fmt.Sprintf("/proc/%d/schedstat", pid))
			if err != nil {
				return x, err
			}
			x.router += t
		}
		x.sender, err = cpuTime(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
		return x, err
	}
	a, err := take()
	if err != nil {
		return err
	}
	time.Sleep(d)
	b, err := take()
	if err != nil {
		return err
	}
	wall := b.at.Sub(a.at)
	n := float64(b.rx - a.rx)
	m.wallPPS = n / wall.Seconds()
	m.pps = m.wallPPS
	if cpu := b.router - a.router; len(l.napi) > 0 && cpu > 0 {
		m.routerBusy = float64(cpu) / float64(wall)
		m.routerNs = float64(cpu) / n
		m.pps = n / cpu.Seconds()
	}
	m.senderBusy = float64(b.sender-a.sender) / float64(wall)
	return nil
}

// measure runs the sender for warmup, then counts what the receiver gets
// for d, stops the sender, and checks the lane's accounting against the
// receiver over the whole run.
func (e *env) measure(l *lane, warmup, d time.Duration) (measurement, error) {
	var m measurement
	acc0, err := accounted(l)
	if err != nil {
		return m, err
	}
	rcv0, err := stats(l.rcv, l.rcvIf)
	if err != nil {
		return m, err
	}
	snd0, err := stats(l.snd, l.sndIf)
	if err != nil {
		return m, err
	}
	rin0, err := stats(l.rtr, l.rinIf)
	if err != nil {
		return m, err
	}
	rout0, err := stats(l.rtr, l.routIf)
	if err != nil {
		return m, err
	}

	s := startSender(l.snd, e.senderCPU)
	werr := e.window(l, s, warmup, d, &m)
	if err := errors.Join(werr, s.halt()); err != nil {
		return m, err
	}

	// Let the router's ring drain before the final counts.
	time.Sleep(100 * time.Millisecond)
	rcv1, err := stats(l.rcv, l.rcvIf)
	if err != nil {
		return m, err
	}
	snd1, err := stats(l.snd, l.sndIf)
	if err != nil {
		return m, err
	}
	rin1, err := stats(l.rtr, l.rinIf)
	if err != nil {
		return m, err
	}
	rout1, err := stats(l.rtr, l.routIf)
	if err != nil {
		return m, err
	}
	acc1, err := accounted(l)
	if err != nil {
		return m, err
	}
	m.received = rcv1.rxPackets - rcv0.rxPackets
	if m.received == 0 {
		return m, errors.New("the receiver got nothing")
	}
	dropped := snd1.txDropped - snd0.txDropped
	if got := rin1.rxPackets - rin0.rxPackets + dropped; got > 0 {
		m.dropShare = float64(dropped) / float64(got)
	}
	// Every packet the receiver got passed the accounting, and so did
	// those that the receiver's queue had no room for (counted as drops
	// of the router's outgoing veth); nothing else did.
	lost := rout1.txDropped - rout0.txDropped
	for i, k := range slices.Sorted(maps.Keys(acc1)) {
		n := acc1[k] - acc0[k]
		if i == 0 {
			m.accounted = n
		}
		if n != m.received+lost {
			return m, fmt.Errorf("accounting does not add up: the %s counted %d packets, the receiver got %d and %d were lost on the way", k, n, m.received, lost)
		}
	}
	return m, nil
}
