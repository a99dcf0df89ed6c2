package managed

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"

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
		return err
	}
	defer closeConn()
	ch, err := Apply(conn, rs)
	if err != nil {
		return err
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

// Dial opens a netlink connection to nftables in the namespace at path
// ("" for the exporter's own).
func Dial(netns string) (*nftables.Conn, func(), error) {
	if netns == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(netns)
	if err != nil {
		return nil, nil, fmt.Errorf("network namespace: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}
