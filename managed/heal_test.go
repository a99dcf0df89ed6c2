package managed

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// startManager applies yaml in the namespace with a Manager of the given
// timing and watches the table until the test ends. It returns the Manager
// and its log.
func startManager(t *testing.T, ns *netnstest.NS, yaml string, timing healTiming) (*Manager, *exetest.SyncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &exetest.SyncBuffer{}
	m := NewManager(path, ns.Path(), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	m.timing = timing
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	claim, err := claimPath(ns.Path(), m.tableName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(claim); err != nil {
		t.Errorf("the claim on the table: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Watch(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		m.Close()
		if _, err := os.Stat(claim); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Close left the claim %s: %v", claim, err)
		}
		if t.Failed() {
			t.Logf("manager log:\n%s", logs.String())
		}
	})
	return m, logs
}

func (m *Manager) repairCount() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.repairs
}

// waitRepairs waits until the Manager has made n repairs, and fails the
// test after timeout.
func waitRepairs(t *testing.T, m *Manager, n uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for m.repairCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d repairs after %s, want %d", m.repairCount(), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchRepairsDeletedTable: the table deleted by nft is back within
// seconds, the repair is counted once and logged once with what was
// missing and who changed it.
func TestWatchRepairsDeletedTable(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	// No periodic check: only the notification can tell.
	timing := defaultHealTiming
	timing.recheck = time.Hour
	m, logs := startManager(t, ns, repairYAML, timing)
	want := blocks(ns.Run("nft", "-s", "list", "table", "inet", "ipacct"))
	// The check that follows the monitor's start is over by then.
	time.Sleep(5 * timing.settle)

	start := time.Now()
	ns.Run("nft", "delete", "table", "inet", "ipacct")
	waitRepairs(t, m, 1, 10*time.Second)
	t.Logf("repaired %s after nft delete table returned", time.Since(start).Round(time.Millisecond))
	if got := blocks(ns.Run("nft", "-s", "list", "table", "inet", "ipacct")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("repaired table:\n%s", strings.Join(got, "\n"))
	}
	out := logs.String()
	if n := strings.Count(out, "repaired the managed table"); n != 1 || !strings.Contains(out, `missing="the table"`) || !strings.Contains(out, "changed_by=nft[") {
		t.Errorf("%d repair lines; want one naming the table missing and nft:\n%s", n, out)
	}
	// Nothing else happens: the repair's own change is not another.
	time.Sleep(3 * timing.settle)
	if n := m.repairCount(); n != 1 {
		t.Errorf("%d repairs for one deletion", n)
	}
}

// TestWatchChecksPeriodically: a change that no notification reports (here
// the exporter's own process deletes its table, which the listener takes
// for a change of its own) is repaired by the periodic check.
func TestWatchChecksPeriodically(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	timing := defaultHealTiming
	timing.recheck = 300 * time.Millisecond
	m, logs := startManager(t, ns, repairYAML, timing)
	time.Sleep(5 * timing.settle)
	if _, err := Cleanup(conn(t, ns), "ipacct"); err != nil {
		t.Fatal(err)
	}
	waitRepairs(t, m, 1, 10*time.Second)
	if out := logs.String(); strings.Contains(out, "changed_by") || !strings.Contains(out, `missing="the table"`) {
		t.Errorf("the repair line should name no process and the table missing:\n%s", out)
	}
}

// TestWatchBacksOff: a program that deletes the table again and again gets
// repairs ever further apart, not a spin; once it stops, the table is
// repaired.
func TestWatchBacksOff(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "sh")
	ns := netnstest.New(t)
	timing := healTiming{settle: 20 * time.Millisecond, recheck: time.Hour,
		backoffBase: 100 * time.Millisecond, backoffMax: 800 * time.Millisecond, backoffReset: time.Hour}
	m, _ := startManager(t, ns, repairYAML, timing)

	loop := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c",
		"while :; do nft delete table inet ipacct 2>/dev/null; sleep 0.01; done")
	exetest.Run(t, "deleting loop", loop)
	start := time.Now()
	time.Sleep(4 * time.Second)
	_ = loop.Process.Kill()
	_ = loop.Wait()
	elapsed := time.Since(start)

	// The most repairs the backoff allows in that time: the first at once,
	// then each after the gap, which doubles up to backoffMax. A slow
	// machine makes fewer.
	allowed, at := 1, time.Duration(0)
	for gap := timing.backoffBase; ; gap = min(2*gap, timing.backoffMax) {
		if at += gap; at > elapsed {
			break
		}
		allowed++
	}
	n := m.repairCount()
	t.Logf("%d repairs in %s of deleting every 10 ms; the backoff allows %d", n, elapsed.Round(time.Millisecond), allowed)
	if n < 2 || n > uint64(allowed) {
		t.Errorf("%d repairs in %s, want 2 to %d", n, elapsed, allowed)
	}
	// The last deletion may have come after the last repair.
	deadline := time.Now().Add(timing.backoffMax + 10*time.Second)
	for !strings.Contains(ns.Run("nft", "list", "tables"), "table inet ipacct") {
		if time.Now().After(deadline) {
			t.Fatalf("no table %s after the loop stopped", timing.backoffMax+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadDoesNotBlockScrape: while a reload is busy (here in the hook
// that hands the file to the flows collector), the Manager's metrics are
// collected at once.
func TestReloadDoesNotBlockScrape(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	m, _ := startManager(t, ns, repairYAML, defaultHealTiming)
	entered, release := make(chan struct{}), make(chan struct{})
	m.OnApply(func(*config.File) {
		close(entered)
		<-release
	})
	reloaded := make(chan error, 1)
	go func() { reloaded <- m.Reload() }()
	<-entered
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	gathered := make(chan error, 1)
	go func() {
		_, err := reg.Gather()
		gathered <- err
	}()
	select {
	case err := <-gathered:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("collecting waits for the reload")
	}
	close(release)
	if err := <-reloaded; err != nil {
		t.Error(err)
	}
}

// TestClaim: a table has one claim at a time; a released claim is free
// for the next.
func TestClaim(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	a, err := ClaimTable("", "ipacct", "--config.file a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ClaimTable("", "ipacct", "--config.file b.yaml")
	var claimed *ClaimedError
	if !errors.As(err, &claimed) || claimed.Owner != "PID "+strconv.Itoa(os.Getpid())+", --config.file a.yaml" {
		t.Fatalf("second claim: %v", err)
	}
	if !strings.Contains(err.Error(), "table inet ipacct in this network namespace is managed by another ipacct_exporter (PID ") {
		t.Errorf("message: %v", err)
	}
	other, err := ClaimTable("", "other", "--config.file b.yaml")
	if err != nil {
		t.Errorf("another table: %v", err)
	}
	other.Release()
	a.Release()
	b, err := ClaimTable("", "ipacct", "--config.file b.yaml")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	b.Release()
	if left, _ := os.ReadDir(os.Getenv("RUNTIME_DIRECTORY")); len(left) != 0 {
		t.Errorf("released claims left %v", left)
	}
}

// TestNoticeOf: which transactions of the change notifications ask for a
// repair, and whom the repair names; without a kernel.
func TestNoticeOf(t *testing.T) {
	ours := &nftables.Table{Name: "ipacct", Family: nftables.TableFamilyINet}
	other := &nftables.Table{Name: "fw", Family: nftables.TableFamilyIPv4}
	by := func(pid uint32, comm string) *nftables.MonitorEvent {
		return &nftables.MonitorEvent{Data: &nftables.GenMsg{ProcPID: pid, ProcComm: comm}}
	}
	change := func(data any) *nftables.MonitorEvent { return &nftables.MonitorEvent{Data: data} }
	nft := by(4242, "nft")
	for _, c := range []struct {
		name     string
		batch    nftables.MonitorEvents
		table    string // the managed table; "" before the first apply
		touched  bool
		by       string
		replaced bool
	}{
		{name: "table deleted", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change(ours)}},
			table: "ipacct", touched: true, by: "nft[4242]", replaced: true},
		{name: "rule added", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change(&nftables.Rule{Table: ours})}},
			table: "ipacct", touched: true, by: "nft[4242]"},
		{name: "chain of another table", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change(&nftables.Chain{Table: other}), change(other)}},
			table: "ipacct"},
		{name: "elements: the packet path counting", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change([]nftables.SetElement{{Key: []byte{192, 0, 2, 1}}})}},
			table: "ipacct"},
		{name: "a set: its table unknown", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change(&nftables.Set{Name: "s"})}},
			table: "ipacct", touched: true, by: "nft[4242]"},
		{name: "our own thread", batch: nftables.MonitorEvents{GeneratedBy: by(uint32(os.Getpid()), "ipacct_exporter"), Changes: []*nftables.MonitorEvent{change(ours)}},
			table: "ipacct"},
		{name: "notifications lost", batch: nftables.MonitorEvents{GeneratedBy: &nftables.MonitorEvent{Type: nftables.MonitorEventTypeOOB}},
			table: "ipacct", touched: true, replaced: true},
		{name: "before the first apply", batch: nftables.MonitorEvents{GeneratedBy: nft, Changes: []*nftables.MonitorEvent{change(ours)}}},
	} {
		n, touched := noticeOf(&c.batch, c.table)
		// What a notice that asks for nothing says does not matter.
		if touched != c.touched || touched && (strings.Join(n.by, ",") != c.by || n.replaced != c.replaced) {
			t.Errorf("%s: touched %v by %q replaced %v; want %v, %q, %v", c.name, touched, n.by, n.replaced, c.touched, c.by, c.replaced)
		}
	}
}

// TestNoticesAdd: notices gathered while a repair waits keep the first
// change's time, up to four processes, each once, and whether the table
// was replaced.
func TestNoticesAdd(t *testing.T) {
	t0 := time.Now()
	var n notice
	for i, o := range []notice{
		{since: t0.Add(time.Second), by: []string{"nft[1]"}},
		{since: t0, by: []string{"nft[1]", "iptables-nft[2]"}},
		{by: []string{"a[3]", "b[4]", "c[5]"}, replaced: true},
		{since: t0.Add(2 * time.Second)},
	} {
		n.add(o)
		if i == 2 && !n.replaced {
			t.Error("replaced was lost")
		}
	}
	if !n.since.Equal(t0) || strings.Join(n.by, ",") != "nft[1],iptables-nft[2],a[3],b[4]" || !n.replaced {
		t.Errorf("%+v", n)
	}
}

// TestBackoff: repairs in a row wait backoffBase, then twice that, up to
// backoffMax; after backoffReset without a repair, none waits.
func TestBackoff(t *testing.T) {
	timing := healTiming{backoffBase: time.Second, backoffMax: 5 * time.Second, backoffReset: time.Hour}
	var b backoff
	if !b.next(timing).IsZero() {
		t.Error("the first repair waits")
	}
	var waits []time.Duration
	for range 5 {
		b.repaired(timing)
		waits = append(waits, b.next(timing).Sub(b.last))
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	b.last = time.Now().Add(-2 * time.Hour)
	if !b.next(timing).IsZero() {
		t.Error("a repair long after the last waits")
	}
	if b.repaired(timing); b.streak != 1 {
		t.Errorf("streak %d after a pause, want 1", b.streak)
	}
}
