package managed

import (
	"log/slog"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

var (
	reloadSuccessDesc = prometheus.NewDesc("ipacct_config_last_reload_successful",
		"1 if the last load of rules.yaml, with its apply to the kernel, succeeded, and no repair of the table has failed since.", nil, nil)
	reloadTimestampDesc = prometheus.NewDesc("ipacct_config_last_reload_success_timestamp_seconds",
		"When rules.yaml was last loaded and applied successfully.", nil, nil)
	repairsDesc = prometheus.NewDesc("ipacct_config_repairs_total",
		"Times the managed table was found changed or missing and was applied again as rules.yaml holds it.", nil, nil)
)

// Manager keeps the managed table in step with rules.yaml across reloads,
// and repairs it when another program changes it (see heal.go). A file that
// does not load, validate or apply leaves the running rules and the last
// good config in place.
type Manager struct {
	path   string
	netns  string
	logger *slog.Logger
	timing healTiming

	// applyMu serialises the loads and applies of reloads and repairs. A
	// scrape never takes it: it waits for no file and no transaction.
	applyMu sync.Mutex
	rs      *Ruleset // the ruleset last applied
	claim   *Claim   // of rs.Table
	onApply []func(*config.File)

	// queued is the reload that callers of Reload wait for, not started
	// yet: callers that come while a reload runs share the next one.
	queueMu sync.Mutex
	queued  *reloadCall
	// requests holds the one reload that RequestReload asked Watch for.
	requests chan struct{}

	mu           sync.Mutex // guards the fields below; held only to read or write them
	table        string     // the name of the managed table, once applied
	lastOK       bool
	repairFailed bool
	lastSuccess  time.Time
	repairs      uint64
}

// reloadCall is one reload and its outcome, shared by its callers.
type reloadCall struct {
	done chan struct{}
	err  error
}

// OnApply adds fn to what runs, under the apply lock, after each file
// that loaded and applied: so the parts of the exporter that count
// outside the kernel (flows) take the same parse of the file.
func (m *Manager) OnApply(fn func(*config.File)) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.onApply = append(m.onApply, fn)
}

// NewManager returns a Manager for the file at path, applying in the
// network namespace at netns ("" for the exporter's own).
func NewManager(path, netns string, logger *slog.Logger) *Manager {
	return &Manager{path: path, netns: netns, logger: logger, timing: defaultHealTiming, requests: make(chan struct{}, 1)}
}

// Reload loads the file, builds its ruleset and applies it. Calls that
// come while a reload runs wait for the one after it, which all of them
// share: the file is read after each call began, and a flood of calls costs
// two reloads.
func (m *Manager) Reload() error {
	m.queueMu.Lock()
	c := m.queued
	if c == nil {
		c = &reloadCall{done: make(chan struct{})}
		m.queued = c
	}
	m.queueMu.Unlock()

	m.applyMu.Lock()
	m.queueMu.Lock()
	run := m.queued == c
	if run {
		m.queued = nil
	}
	m.queueMu.Unlock()
	if run {
		c.err = m.reload()
		close(c.done)
	}
	m.applyMu.Unlock()
	<-c.done
	return c.err
}

// RequestReload asks Watch to reload, without waiting: for a signal
// handler, which must go on to handle the next signal.
func (m *Manager) RequestReload() {
	select {
	case m.requests <- struct{}{}:
	default: // one is waiting already
	}
}

// Close gives up the claim on the table. The table stays.
func (m *Manager) Close() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.claim.Release()
	m.claim = nil
}

// reload is Reload's work, under applyMu.
func (m *Manager) reload() error {
	err := m.load()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastOK = err == nil
	if err != nil {
		msg := "rules.yaml not applied; the previous rules stay in place"
		if m.lastSuccess.IsZero() {
			msg = "rules.yaml not applied"
		}
		m.logger.Error(msg, "file", m.path, "err", err)
		return err
	}
	m.repairFailed = false
	m.lastSuccess = time.Now()
	m.table = m.rs.Table
	return nil
}

func (m *Manager) load() error {
	f, err := config.Load(m.path)
	if err != nil {
		return err
	}
	rs, err := Build(f)
	if err != nil {
		return err
	}
	claim := m.claim
	if m.rs == nil || m.rs.Table != rs.Table {
		if claim, err = ClaimTable(m.netns, rs.Table, "--config.file "+m.path); err != nil {
			return err
		}
	}
	conn, closeConn, err := Dial(m.netns)
	if err == nil {
		defer closeConn()
		var ch Changes
		if ch, err = Apply(conn, rs); err == nil {
			m.logApplied(rs, ch)
		}
	}
	if err != nil {
		if claim != m.claim {
			claim.Release()
		}
		return ExplainPermission(err)
	}
	if claim != m.claim {
		m.claim.Release()
		m.claim = claim
	}
	m.rs = rs
	for _, fn := range m.onApply {
		fn(f)
	}
	return nil
}

func (m *Manager) logApplied(rs *Ruleset, ch Changes) {
	if ch.Empty() {
		m.logger.Info("rules.yaml applied: the kernel already matched it", "file", m.path, "table", "inet "+rs.Table)
		return
	}
	// The table is the exporter's alone: what rules.yaml does not have goes,
	// named in the log, whoever put it there.
	attrs := []any{"file", m.path, "table", "inet " + rs.Table, "created", ch.Created,
		"chains_added", len(ch.Added), "chains_removed", len(ch.Removed), "chains_rewritten", len(ch.Rewritten), "chains_kept", ch.Unchanged,
		"sets_added", len(ch.SetsAdded), "sets_removed", len(ch.SetsRemoved), "sets_kept", ch.SetsKept, "addresses_dropped", ch.ElementsRemoved}
	if _, _, removed := ch.describe(); removed != "" {
		attrs = append(attrs, "removed", removed)
	}
	m.logger.Info("rules.yaml applied", attrs...)
}

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadSuccessDesc
	ch <- reloadTimestampDesc
	ch <- repairsDesc
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ok, ts, repairs := m.lastOK && !m.repairFailed, m.lastSuccess, m.repairs
	m.mu.Unlock()
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(reloadSuccessDesc, prometheus.GaugeValue, v)
	var sec float64
	if !ts.IsZero() {
		sec = float64(ts.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(reloadTimestampDesc, prometheus.GaugeValue, sec)
	ch <- prometheus.MustNewConstMetric(repairsDesc, prometheus.CounterValue, float64(repairs))
}

// ExplainPermission adds to the kernel's refusal of a change to the managed
// table what the exporter lacks. Dial connects lazily, so a missing
// capability shows in the first request, not in Dial: wrap the errors of
// what follows it too.
func ExplainPermission(err error) error {
	return netns.Explain(err, "installing the rules of --config.file")
}

// Dial opens a netlink connection to nftables in the namespace at path
// ("" for the exporter's own), one socket for every request until the
// returned function closes it. Errors for lack of privilege come with the
// first request (see ExplainPermission).
func Dial(path string) (*nftables.Conn, func(), error) {
	return dial(path, nftables.AsLasting())
}

func dial(path string, opts ...nftables.ConnOption) (*nftables.Conn, func(), error) {
	ns, err := netns.Open(path)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, nftables.WithSockOptions(roomForBatch), nftables.WithNetNSFd(ns.Fd()))
	c, err := nftables.New(opts...)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return c, func() { _ = c.CloseLasting(); ns.Close() }, nil
}

// batchBufferSize bounds the socket buffers for a transaction and its
// replies. They are limits, not allocations.
const batchBufferSize = 64 << 20

// roomForBatch makes a large transaction fit the socket. google/nftables
// sends a transaction in one sendmsg, which fails (EMSGSIZE) when it is
// larger than the send buffer, about 200 KiB by default: a few thousand
// rules. And it asks the kernel to acknowledge every message, each
// acknowledgement costing about a kilobyte of the receive buffer, which
// overflows (ENOBUFS) past a few hundred rules, leaving the outcome of
// the transaction unknown. So acknowledgements leave out the message they
// answer (NETLINK_CAP_ACK), and both buffers may grow past the system's
// default limits (SO_SNDBUFFORCE, SO_RCVBUFFORCE: allowed with
// CAP_NET_ADMIN, which writing rules needs anyway).
func roomForBatch(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = raw.Control(func(fd uintptr) {
		if opErr = unix.SetsockoptInt(int(fd), unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); opErr != nil {
			return
		}
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], batchBufferSize) != nil {
				// Without the capability, as large as the system allows.
				if opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], batchBufferSize); opErr != nil {
					return
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return opErr
}
