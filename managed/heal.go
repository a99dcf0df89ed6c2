package managed

// How the exporter heals its table. Another program that changes the
// managed table leaves it counting less or nothing: `nft flush ruleset`,
// with which Debian's /etc/nftables.conf (and so `systemctl reload
// nftables`) starts, deletes it; so do `nft delete table`, and
// `ipacct_exporter cleanup` while the daemon runs. The exporter listens to
// nftables' change notifications (the netlink group NFNLGRP_NFTABLES, which
// `nft monitor` reads). On a change to its table by another process it waits
// timing.settle for the rest of that change, compares the table with the
// ruleset it last applied, and applies that again, in one transaction, as a
// reload does. Every timing.recheck, a cheap check of the table's chains and
// sets catches what the notifications missed (a receive buffer overrun, a
// monitor that could not start).
//
// A program that removes the table again and again must not make the
// exporter spin: each repair that follows the last within
// timing.backoffReset waits longer, from timing.backoffBase, doubling, up
// to timing.backoffMax.

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
)

// healTiming are the delays of healing.
type healTiming struct {
	settle, recheck                       time.Duration
	backoffBase, backoffMax, backoffReset time.Duration
}

var defaultHealTiming = healTiming{
	// A tool's change may take a few transactions (a flush, then its own
	// rules): wait for them, so that one change is one repair.
	settle:       100 * time.Millisecond,
	recheck:      10 * time.Second,
	backoffBase:  time.Second,
	backoffMax:   time.Minute,
	backoffReset: 10 * time.Minute,
}

// notice is what the notifications said about changes to the table that
// the next repair has not dealt with yet.
type notice struct {
	since time.Time // the first change
	by    []string  // the processes that made them: "nft[1234]"
	// replaced: the table was deleted or created, or changes may have gone
	// unseen. A table without the marker chain is then not taken as ours.
	replaced bool
}

func (n *notice) add(o notice) {
	if n.since.IsZero() || (!o.since.IsZero() && o.since.Before(n.since)) {
		n.since = o.since
	}
	for _, b := range o.by {
		if !slices.Contains(n.by, b) && len(n.by) < 4 {
			n.by = append(n.by, b)
		}
	}
	n.replaced = n.replaced || o.replaced
}

// Watch keeps the managed table as the last applied rules.yaml made it, and
// reloads when RequestReload asks, until ctx ends.
func (m *Manager) Watch(ctx context.Context) {
	notices := make(chan notice, 16)
	go m.listen(ctx, notices)
	tick := time.NewTicker(m.timing.recheck)
	defer tick.Stop()
	timer := time.NewTimer(0)
	<-timer.C
	var (
		pending    *notice // changes not repaired yet; the timer runs for them
		backoff    backoff
		lastErr    string
		scheduleAt = func(at time.Time) { timer.Reset(time.Until(at)) }
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.requests:
			_ = m.Reload() // logs its outcome
		case n := <-notices:
			if pending == nil {
				pending = &notice{}
				scheduleAt(time.Now().Add(m.timing.settle))
			}
			pending.add(n)
		case <-tick.C:
			if pending == nil && !m.intact() {
				pending = &notice{replaced: true}
				scheduleAt(time.Now())
			}
		case <-timer.C:
			retry, err := m.heal(*pending, &backoff)
			switch {
			case err != nil && err.Error() != lastErr:
				m.logger.Error("the managed table differs from rules.yaml and cannot be repaired; retrying at the next change, or within "+m.timing.recheck.String(), "file", m.path, "err", err)
				lastErr = err.Error()
			case err == nil:
				lastErr = ""
			}
			if retry.IsZero() {
				pending = nil
			} else {
				scheduleAt(retry)
			}
		}
	}
}

// backoff spaces the repairs of a table that keeps being changed.
type backoff struct {
	streak int       // repairs, each within backoffReset of the one before
	last   time.Time // the last repair
}

// next is when the next repair may run.
func (b backoff) next(t healTiming) time.Time {
	if b.streak == 0 || time.Since(b.last) > t.backoffReset {
		return time.Time{}
	}
	d := t.backoffBase << min(b.streak-1, 30)
	if d > t.backoffMax || d <= 0 {
		d = t.backoffMax
	}
	return b.last.Add(d)
}

func (b *backoff) repaired(t healTiming) {
	if time.Since(b.last) > t.backoffReset {
		b.streak = 0
	}
	b.streak++
	b.last = time.Now()
}

// intact is the cheap check: whether the table has every chain and set of
// the ruleset, of the right kind, and nothing more. It does not read rules.
func (m *Manager) intact() bool {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.rs == nil {
		return true
	}
	conn, closeConn, err := Dial(m.netns)
	if err != nil {
		return false
	}
	defer closeConn()
	p, err := observeAndPlan(conn, m.rs, structure, true)
	return err == nil && p.changes().Empty()
}

// heal compares the table with the ruleset last applied and applies it
// again where they differ. It returns when to try again: after the
// backoff, when it is too soon for another repair.
func (m *Manager) heal(n notice, b *backoff) (retry time.Time, err error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	rs := m.rs
	if rs == nil {
		return time.Time{}, nil
	}
	defer func() { m.setRepairFailed(err != nil) }()
	conn, closeConn, err := Dial(m.netns)
	if err != nil {
		return time.Time{}, ExplainPermission(err)
	}
	defer closeConn()
	// The same path as a reload's Apply, but for the addresses in the sets:
	// those are the counts, not the rules, and stay.
	p, err := observeAndPlan(conn, rs, withRules, !n.replaced)
	if err != nil {
		return time.Time{}, ExplainPermission(err)
	}
	ch := p.changes()
	if ch.Empty() {
		return time.Time{}, nil
	}
	if at := b.next(m.timing); time.Now().Before(at) {
		return at, nil
	}
	if err := commit(conn, p); err != nil {
		return time.Time{}, ExplainPermission(err)
	}
	b.repaired(m.timing)
	m.mu.Lock()
	m.repairs++
	repairs := m.repairs
	m.mu.Unlock()

	attrs := []any{"table", "inet " + rs.Table, "file", m.path}
	missing, changed, removed := ch.describe()
	for _, a := range [][2]string{{"changed_by", strings.Join(n.by, ", ")}, {"missing", missing}, {"changed", changed}, {"removed", removed}} {
		if a[1] != "" {
			attrs = append(attrs, a[0], a[1])
		}
	}
	attrs = append(attrs, "repairs", repairs)
	if !n.since.IsZero() {
		// Traffic is not counted between the change and its repair.
		attrs = append(attrs, "uncounted", time.Since(n.since).Round(time.Millisecond).String())
	}
	if next := b.next(m.timing); !next.IsZero() {
		attrs = append(attrs, "next_repair_not_before", next.Format(time.RFC3339))
	}
	m.logger.Warn("repaired the managed table: another program had changed it", attrs...)
	return time.Time{}, nil
}

func (m *Manager) setRepairFailed(failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.repairFailed = failed
}

// tableName is the managed table's name, "" before the first apply.
func (m *Manager) tableName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table
}

// listen sends a notice for each transaction of another process that
// touches the managed table, until ctx ends. When it cannot listen, or
// misses notifications, it sends a notice that asks for a check.
func (m *Manager) listen(ctx context.Context, notices chan<- notice) {
	var lastErr string
	for ctx.Err() == nil {
		events, stop, err := m.monitor()
		if err != nil {
			if err.Error() != lastErr {
				m.logger.Warn("cannot listen to nftables' changes; checking the managed table every "+m.timing.recheck.String()+" instead", "err", ExplainPermission(err))
				lastErr = err.Error()
			}
			sleep(ctx, m.timing.recheck)
			continue
		}
		lastErr = ""
		go func() {
			<-ctx.Done()
			stop()
		}()
		send := func(n notice) {
			select {
			case notices <- n:
			case <-ctx.Done():
			}
		}
		// Changes between the apply and now went unseen.
		send(notice{replaced: true})
		for batch := range events {
			if n, ok := noticeOf(batch, m.tableName()); ok {
				send(n)
			}
		}
		stop()
		if ctx.Err() == nil {
			// Usually a receive buffer overrun (ENOBUFS).
			m.logger.Debug("nftables' change notifications stopped; listening again")
			sleep(ctx, time.Second)
		}
	}
}

// monitor subscribes to nftables' change notifications, grouped by
// transaction.
func (m *Manager) monitor() (chan *nftables.MonitorEvents, func(), error) {
	// A socket of its own, which Close closes: not Dial's lasting one.
	conn, closeConn, err := dial(m.netns)
	if err != nil {
		return nil, nil, err
	}
	defer closeConn() // the monitor's socket lives on in the namespace
	mon := nftables.NewMonitor(nftables.WithMonitorEventBuffer(64))
	events, err := conn.AddGenerationalMonitor(mon)
	if err != nil {
		return nil, nil, err
	}
	return events, func() { _ = mon.Close() }, nil
}

// noticeOf says whether the transaction batch of another process touched
// the table, and how.
func noticeOf(batch *nftables.MonitorEvents, table string) (notice, bool) {
	n := notice{since: time.Now()}
	if g := batch.GeneratedBy; g != nil {
		if g.Type == nftables.MonitorEventTypeOOB {
			return notice{since: n.since, replaced: true}, true
		}
		if gen, ok := g.Data.(*nftables.GenMsg); ok {
			if ownThread(gen.ProcPID) {
				return n, false // our own reload or repair
			}
			n.by = []string{gen.ProcComm + "[" + strconv.FormatUint(uint64(gen.ProcPID), 10) + "]"}
		}
	}
	ours := func(t *nftables.Table) bool {
		return t == nil || t.Name == table && t.Family == nftables.TableFamilyINet
	}
	touched := false
	for _, ev := range batch.Changes {
		switch d := ev.Data.(type) {
		case *nftables.Table:
			if ours(d) {
				touched, n.replaced = true, true
			}
		case *nftables.Chain:
			touched = touched || d == nil || ours(d.Table)
		case *nftables.Rule:
			touched = touched || d == nil || ours(d.Table)
		case []nftables.SetElement:
			// The counts, not the rules: the packet path adds elements.
		default:
			// Sets and objects: google/nftables does not say which table
			// they are in.
			touched = true
		}
	}
	return n, touched && table != ""
}

// ownThread reports whether the kernel's process ID of a transaction is a
// thread of this process: the kernel names the thread that sent it.
// Another PID namespace names it otherwise, and a repair finds nothing to
// do.
func ownThread(pid uint32) bool {
	_, err := os.Stat("/proc/self/task/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
