package managed

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/config"
)

var (
	reloadSuccessDesc = prometheus.NewDesc("ipacct_config_last_reload_successful",
		"1 if the last load of rules.yaml, with its apply to the kernel, succeeded.", nil, nil)
	reloadTimestampDesc = prometheus.NewDesc("ipacct_config_last_reload_success_timestamp_seconds",
		"When rules.yaml was last loaded and applied successfully.", nil, nil)
)

// Manager keeps the managed table in step with rules.yaml across reloads.
// A file that does not load, validate or apply leaves the running rules
// and the last good config in place.
type Manager struct {
	path   string
	netns  string
	logger *slog.Logger

	mu          sync.Mutex // serialises reloads and guards the fields below
	lastOK      bool
	lastSuccess time.Time
	onApply     []func(*config.File)
}

// OnApply adds fn to what runs, under the reload lock, after each file
// that loaded and applied: so the parts of the exporter that count
// outside the kernel (flows) take the same parse of the file.
func (m *Manager) OnApply(fn func(*config.File)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onApply = append(m.onApply, fn)
}

// NewManager returns a Manager for the file at path, applying in the
// network namespace at netns ("" for the exporter's own).
func NewManager(path, netns string, logger *slog.Logger) *Manager {
	return &Manager{path: path, netns: netns, logger: logger}
}

// Reload loads the file, builds its ruleset and applies it.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.reload()
	m.lastOK = err == nil
	if err != nil {
		msg := "rules.yaml not applied; the previous rules stay in place"
		if m.lastSuccess.IsZero() {
			msg = "rules.yaml not applied"
		}
		m.logger.Error(msg, "file", m.path, "err", err)
		return err
	}
	m.lastSuccess = time.Now()
	return nil
}

func (m *Manager) reload() error {
	f, err := config.Load(m.path)
	if err != nil {
		return err
	}
	rs, err := Build(f)
	if err != nil {
		return err
	}
	conn, closeConn, err := Dial(m.netns)
	if err != nil {
		return ExplainPermission(err)
	}
	defer closeConn()
	ch, err := Apply(conn, rs)
	if err != nil {
		return ExplainPermission(err)
	}
	for _, fn := range m.onApply {
		fn(f)
	}
	if ch.Empty() {
		m.logger.Info("rules.yaml applied: the kernel already matched it", "file", m.path, "table", "inet "+rs.Table)
	} else {
		m.logger.Info("rules.yaml applied", "file", m.path, "table", "inet "+rs.Table, "created", ch.Created,
			"chains_added", len(ch.Added), "chains_removed", len(ch.Removed), "chains_kept", ch.Unchanged,
			"sets_added", len(ch.SetsAdded), "sets_removed", len(ch.SetsRemoved), "sets_kept", ch.SetsKept, "addresses_dropped", ch.ElementsRemoved)
	}
	return nil
}

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadSuccessDesc
	ch <- reloadTimestampDesc
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ok, ts := m.lastOK, m.lastSuccess
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
}

// ExplainPermission adds to the kernel's refusal of a change to the managed
// table what the exporter lacks. Dial connects lazily, so a missing
// capability shows in the first request, not in Dial: wrap the errors of
// what follows it too.
func ExplainPermission(err error) error {
	var sysErr *os.SyscallError
	switch {
	case errors.As(err, &sysErr) && sysErr.Syscall == "setns":
		return fmt.Errorf("%w (entering another network namespace (--netns) needs CAP_SYS_ADMIN, beside CAP_NET_ADMIN for the rules)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (installing the rules of --config.file needs the capability CAP_NET_ADMIN, which the exporter does not have: grant it, or run as root with it)", err)
	}
	return err
}

// Dial opens a netlink connection to nftables in the namespace at path
// ("" for the exporter's own). It does not talk to the kernel yet: errors
// for lack of privilege come with the first request (see ExplainPermission).
func Dial(netns string) (*nftables.Conn, func(), error) {
	batchRoom := nftables.WithSockOptions(roomForBatch)
	if netns == "" {
		c, err := nftables.New(batchRoom)
		return c, func() {}, err
	}
	f, err := os.Open(netns)
	if err != nil {
		return nil, nil, fmt.Errorf("network namespace: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())), batchRoom)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
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
