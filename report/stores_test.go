package report

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// fakeExporter serves ipacct_* counters the way the exporter does for new
// counters (issue 14), on 127.0.0.1, to test the report against real stores
// without the kernel:
//   - a counter born while it runs is served at 0 in the first scrape that
//     shows it, by whichever scraper, and at its value from then on;
//   - such a counter has a created timestamp, the time of the read before it
//     was born, which OpenMetrics scrapes get as a _created sample;
//   - a counter that existed when it started has none;
//   - a restart keeps the counts (they are the kernel's) and drops the
//     created timestamps.
type fakeExporter struct {
	mu       sync.Mutex
	counters []*fakeCounter
	lastRead time.Time
	// served records, per listener, the first value served of each counter
	// and whether it came with a created timestamp, and the last value.
	first map[string]map[*fakeCounter]servedValue
	last  map[string]map[*fakeCounter]float64
}

type fakeCounter struct {
	metric       string // ipacct_ip or ipacct_tag
	tag, ip, dir string
	bytes        float64   // what the kernel counted
	born         time.Time // zero: existed at the start
	shown        bool
}

type servedValue struct {
	bytes   float64
	created bool
}

func (c *fakeCounter) String() string {
	return fmt.Sprintf("%s %s %s %s", c.metric, c.tag, c.ip, c.dir)
}

// packets of a counter: a packet per 100 bytes, rounded up, so that the
// packets of the whole differ from the sum of the packets of its parts.
func packets(bytes float64) float64 { return float64(int64(bytes+99) / 100) }

func newFakeExporter() *fakeExporter {
	return &fakeExporter{first: map[string]map[*fakeCounter]servedValue{}, last: map[string]map[*fakeCounter]float64{}}
}

// add makes a counter that exists from the start, with a history.
func (f *fakeExporter) add(metric, tag, ip, dir string, history float64) *fakeCounter {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeCounter{metric: metric, tag: tag, ip: ip, dir: dir, bytes: history, shown: true}
	f.counters = append(f.counters, c)
	return c
}

// appear makes a counter born now with the burst it counted before any
// scrape: a new host in a set, a new tag's rule.
func (f *fakeExporter) appear(metric, tag, ip, dir string, burst float64) *fakeCounter {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeCounter{metric: metric, tag: tag, ip: ip, dir: dir, bytes: burst, born: f.lastRead}
	f.counters = append(f.counters, c)
	return c
}

func (f *fakeExporter) count(c *fakeCounter, bytes float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.bytes += bytes
}

// restart is the exporter started anew on the same kernel.
func (f *fakeExporter) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.counters {
		c.born, c.shown = time.Time{}, true
	}
	f.lastRead = time.Time{}
}

// handler serves /metrics for the scraper on listener, negotiating
// OpenMetrics with created samples as the exporter does.
func (f *fakeExporter) handler(listener string) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(fakeCollector{f, listener})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, EnableOpenMetricsTextCreatedSamples: true})
}

type fakeCollector struct {
	f        *fakeExporter
	listener string
}

var fakeDescs = map[string]*prometheus.Desc{}

func fakeDesc(name string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, "Test counter.", labels, nil)
}

func init() {
	fakeDescs[ipBytes] = fakeDesc(ipBytes, "tag", "ip", "direction")
	fakeDescs[ipPackets] = fakeDesc(ipPackets, "tag", "ip", "direction")
	fakeDescs[tagBytes] = fakeDesc(tagBytes, "tag", "direction")
	fakeDescs[tagPackets] = fakeDesc(tagPackets, "tag", "direction")
}

func (fc fakeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range fakeDescs {
		ch <- d
	}
}

func (fc fakeCollector) Collect(ch chan<- prometheus.Metric) {
	f := fc.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first[fc.listener] == nil {
		f.first[fc.listener] = map[*fakeCounter]servedValue{}
		f.last[fc.listener] = map[*fakeCounter]float64{}
	}
	for _, c := range f.counters {
		v := c.bytes
		if !c.shown {
			v, c.shown = 0, true
		}
		if _, ok := f.first[fc.listener][c]; !ok {
			f.first[fc.listener][c] = servedValue{bytes: v, created: !c.born.IsZero()}
		}
		f.last[fc.listener][c] = v
		labels := []string{c.tag, c.ip, c.dir}
		if c.metric == "ipacct_tag" {
			labels = []string{c.tag, c.dir}
		}
		for name, value := range map[string]float64{c.metric + "_bytes_total": v, c.metric + "_packets_total": packets(v)} {
			if c.born.IsZero() {
				ch <- prometheus.MustNewConstMetric(fakeDescs[name], prometheus.CounterValue, value, labels...)
			} else {
				ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(fakeDescs[name], prometheus.CounterValue, value, c.born, labels...)
			}
		}
	}
	f.lastRead = time.Now()
}

// caughtUp reports whether listener has been served every counter's
// current value.
func (f *fakeExporter) caughtUp(listener string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.counters {
		if v, ok := f.last[listener][c]; !ok || v != c.bytes {
			return false
		}
	}
	return true
}

// truth is what a store fed by listener must report for the window: each
// counter's traffic since the value first served to it, or all of it when
// that came with a created timestamp (it was born in the window).
func (f *fakeExporter) truth(listener string) map[string]Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Counts{}
	for _, c := range f.counters {
		first := f.first[listener][c]
		base := first.bytes
		if first.created {
			base = 0
		}
		out[c.String()] = Counts{Bytes: uint64(c.bytes - base), Packets: uint64(packets(c.bytes) - packets(base))}
	}
	return out
}

// serve serves h on a free port of 127.0.0.1 until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// startStore starts a Prometheus (scraping targets every second, remote
// writing to remoteWrite if not "") and returns its URL.
func startPrometheusScraping(t *testing.T, job string, targets []string, remoteWrite string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: %s\n    static_configs:\n      - targets: [%s]\n",
		job, strings.Join(targets, ", "))
	if remoteWrite != "" {
		cfg += fmt.Sprintf("remote_write:\n  - url: %s\n    queue_config:\n      batch_send_deadline: 1s\n", remoteWrite)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := exetest.FreeAddr(t)
	exetest.Start(t, "prometheus "+job, "http://"+addr+"/-/ready", 60*time.Second, exec.Command("prometheus",
		"--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr))
	return "http://" + addr
}

// startVictoriaMetrics starts a single-node VictoriaMetrics, scraping
// targets itself every second when there are any, and returns its URL.
func startVictoriaMetrics(t *testing.T, job string, targets []string) string {
	t.Helper()
	dir := t.TempDir()
	addr := exetest.FreeAddr(t)
	args := []string{"-storageDataPath=" + filepath.Join(dir, "data"), "-httpListenAddr=" + addr,
		"-retentionPeriod=100y", "-search.latencyOffset=0s"}
	if len(targets) > 0 {
		cfg := fmt.Sprintf("scrape_configs:\n  - job_name: %s\n    scrape_interval: 1s\n    static_configs:\n      - targets: [%s]\n", job, strings.Join(targets, ", "))
		config := filepath.Join(dir, "scrape.yml")
		if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-promscrape.config="+config)
	}
	exetest.Start(t, "victoria-metrics "+job, "http://"+addr+"/health", 60*time.Second, exec.Command("victoria-metrics", args...))
	return "http://" + addr
}

// waitUntil polls cond every 100 ms up to timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasSamplesAfter reports whether the store at url has a sample after t of
// every series sel selects, and at least one series.
func hasSamplesAfter(url, sel string, t time.Time, n int) bool {
	c, err := NewClient(url, "")
	if err != nil {
		return false
	}
	v, _, err := c.Query(context.Background(), sel+"[1m]", time.Now())
	m, ok := v.(model.Matrix)
	if err != nil || !ok || len(m) < n {
		return false
	}
	for _, s := range m {
		if len(s.Values) == 0 || s.Values[len(s.Values)-1].Timestamp.Time().Before(t) {
			return false
		}
	}
	return true
}

// TestStores runs the exporter's protocol for new counters (fakeExporter)
// against the stores the report reads: Prometheus 2.42 scraping OpenMetrics
// every second, a second Prometheus that starts later, VictoriaMetrics that
// the first Prometheus remote-writes to, and VictoriaMetrics scraping an
// exporter of its own. Hosts appear with a burst before their first scrape,
// a tag's rule appears, the exporter restarts; each store's report over the
// window equals what its scrapes could know, exactly.
func TestStores(t *testing.T) {
	for _, tool := range []string{"prometheus", "victoria-metrics"} {
		if _, err := exec.LookPath(tool); err != nil {
			netnstest.Skip(t, "needs %s (Debian packages prometheus, victoria-metrics): %v", tool, err)
		}
	}
	// exp is scraped by both Prometheus servers, vmExp by VictoriaMetrics
	// alone: its scraper asks for the text format, without created
	// timestamps, so only a lone scraper gets each new counter's 0.
	exp, vmExp := newFakeExporter(), newFakeExporter()
	both := []*fakeExporter{exp, vmExp}
	for _, f := range both {
		f.add("ipacct_ip", "acme", "192.0.2.1", "in", 4e9)
		f.add("ipacct_ip", "acme", "192.0.2.1", "out", 1e9)
		f.add("ipacct_tag", "beta", "", "in", 7e8)
	}
	addrA, addrB, addrVM := serve(t, exp.handler("a")), serve(t, exp.handler("b")), serve(t, vmExp.handler("vm"))

	remote := startVictoriaMetrics(t, "remote", nil)
	promA := startPrometheusScraping(t, "a", []string{addrA}, remote+"/api/v1/write")
	vm := startVictoriaMetrics(t, "vm", []string{addrVM})
	waitUntil(t, "the first Prometheus and VictoriaMetrics scrape", 60*time.Second, func() bool {
		return hasSamplesAfter(promA, `{__name__="ipacct_ip_bytes_total"}`, time.Time{}, 2) &&
			hasSamplesAfter(vm, `{__name__="ipacct_ip_bytes_total"}`, time.Time{}, 2)
	})
	time.Sleep(1500 * time.Millisecond)
	from := time.Now()
	time.Sleep(1500 * time.Millisecond)

	// Traffic of the hosts there from the start; then new ones.
	counters := map[*fakeExporter]map[string]*fakeCounter{}
	for _, f := range both {
		counters[f] = map[string]*fakeCounter{}
		for _, c := range f.counters {
			counters[f][c.ip+c.tag+c.dir] = c
		}
	}
	traffic := func(round int) {
		for _, f := range both {
			for k, c := range counters[f] {
				f.count(c, float64(1000+37*round+len(k)))
			}
		}
		time.Sleep(1200 * time.Millisecond)
	}
	appear := func(metric, tag, ip, dir string, burst float64) {
		for _, f := range both {
			counters[f][ip+tag+dir] = f.appear(metric, tag, ip, dir, burst)
		}
	}
	for i := range 3 {
		traffic(i)
	}
	appear("ipacct_ip", "acme", "192.0.2.2", "in", 6000)
	appear("ipacct_ip", "acme", "192.0.2.2", "out", 180)
	waitUntil(t, "the first Prometheus scrapes 192.0.2.2", 20*time.Second, func() bool { return exp.caughtUp("a") })
	traffic(3)

	// The second Prometheus sees 192.0.2.2 first with its value and its
	// created timestamp.
	promB := startPrometheusScraping(t, "b", []string{addrB}, "")
	waitUntil(t, "the second Prometheus scrapes", 60*time.Second, func() bool { return exp.caughtUp("b") })
	for i := 4; i < 6; i++ {
		traffic(i)
	}

	for _, f := range both {
		f.restart()
	}
	traffic(6)
	appear("ipacct_ip", "acme", "192.0.2.3", "out", 280)
	appear("ipacct_tag", "gamma", "", "in", 90)
	for i := 7; i < 10; i++ {
		traffic(i)
	}

	// Every scraper has the last values; the window ends after that.
	waitUntil(t, "every scraper has the last values", 30*time.Second, func() bool {
		return exp.caughtUp("a") && exp.caughtUp("b") && vmExp.caughtUp("vm")
	})
	time.Sleep(1500 * time.Millisecond)
	to := time.Now()
	for name, url := range map[string]string{"first Prometheus": promA, "second Prometheus": promB, "VictoriaMetrics (remote write)": remote, "VictoriaMetrics (scraping)": vm} {
		waitUntil(t, name+" has the samples after the window", 30*time.Second, func() bool {
			return hasSamplesAfter(url, `{__name__=~"ipacct_.*_total"}`, to, 8)
		})
	}

	// Prometheus 2.42 keeps OpenMetrics' _created samples as series of
	// their own (prometheus/prometheus#6541): the report needs them for a
	// second scraper.
	if !hasSamplesAfter(promA, `{__name__="ipacct_ip_bytes_created",ip="192.0.2.2"}`, from, 2) {
		t.Error("the first Prometheus keeps no ipacct_ip_bytes_created of 192.0.2.2")
	}

	for _, tc := range []struct {
		name, url string
		truth     map[string]Counts
	}{
		{"first Prometheus", promA, exp.truth("a")},
		{"second Prometheus", promB, exp.truth("b")},
		{"VictoriaMetrics (remote write)", remote, exp.truth("a")},
		{"VictoriaMetrics (scraping)", vm, vmExp.truth("vm")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := NewClient(tc.url, "")
			if err != nil {
				t.Fatal(err)
			}
			r, err := Build(context.Background(), client, Options{Period: Period{From: from, To: to}, MaxGap: 10 * time.Minute, Chunk: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Counts{}
			for _, tag := range r.Tags {
				for _, a := range tag.Addresses {
					got[fmt.Sprintf("ipacct_ip %s %s in", tag.Name, a.IP)] = a.In
					got[fmt.Sprintf("ipacct_ip %s %s out", tag.Name, a.IP)] = a.Out
				}
				if tag.Metric == MetricTag {
					got[fmt.Sprintf("ipacct_tag %s  in", tag.Name)] = tag.In.Counts()
				}
			}
			var keys []string
			for k := range tc.truth {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if got[k] != tc.truth[k] {
					t.Errorf("%s: report %+v, sent %+v", k, got[k], tc.truth[k])
				}
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %q", r.Warnings)
			}
		})
	}
}
