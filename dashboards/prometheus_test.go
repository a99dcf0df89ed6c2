package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// The exporter's rules for the test namespace: a tag counted by port, and
// a tenant counted per address. The namespace also gets the seed's native
// tables (netnstest.SeedNFT), for tags of families ip and ip6 and one
// without a direction.
const testRulesYAML = `
accounting:
  - tag: web
    description: Web traffic of the test
    protocol: udp
    ports: [80]
addresses:
  - tag: rent31
    description: Tenant in office 31
    networks: [198.51.100.0/25, 2001:db8:beef::/64]
`

// The rate windows the test gives Grafana's variables. Grafana derives
// $__rate_interval from the data source's scrape interval (4 × 1 s here)
// and the panel's step; 10s holds a few scrapes whatever the step.
const (
	testScrapeInterval = time.Second
	testRateInterval   = "10s"
	testStep           = 2 * time.Second
	// testThreshold replaces the default of the high-usage alerts in the
	// test's copy of rules.yml, so that a few kB/s are "high".
	testThreshold = "1000"
)

// TestMain removes the exporter that the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	exetest.RemoveBinary()
	os.Exit(code)
}

// start runs a process until the test ends and waits until GET ready
// answers 200.
func start(t *testing.T, name, ready string, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	exetest.Start(t, name, ready, 20*time.Second, cmd)
	return cmd
}

// prom is a Prometheus server's HTTP API.
type prom struct {
	t     *testing.T
	url   string
	start time.Time
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`  // instant: [time, "value"]
	Values [][]any           `json:"values"` // range
}

// values is the sample's values, as numbers.
func (s sample) values() []float64 {
	var out []float64
	pairs := s.Values
	if s.Value != nil {
		pairs = append(pairs, s.Value)
	}
	for _, p := range pairs {
		if len(p) == 2 {
			str, _ := p[1].(string)
			v, err := strconv.ParseFloat(str, 64)
			if err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// get calls the API at path with params and decodes its data into data.
// It returns the API's error, if any.
func (p *prom) get(path string, params url.Values, data any) error {
	resp, err := http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s", r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

// query evaluates expr at now, or over [start, now] at step when step is
// not zero.
func (p *prom) query(expr string, step time.Duration) ([]sample, error) {
	var data struct {
		Result []sample `json:"result"`
	}
	now := time.Now()
	if step == 0 {
		err := p.get("/api/v1/query", url.Values{"query": {expr}, "time": {ts(now)}}, &data)
		return data.Result, err
	}
	// As many steps back from now as cover the test's data, at least one.
	n := math.Ceil(now.Sub(p.start).Seconds() / step.Seconds())
	from := now.Add(-time.Duration(math.Max(n, 1)) * step)
	err := p.get("/api/v1/query_range", url.Values{"query": {expr}, "start": {ts(from)}, "end": {ts(now)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}, &data)
	return data.Result, err
}

func ts(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }

// labelValues answers Grafana's label_values(selector, label) the way its
// Prometheus data source does: the label's values among the series that
// match selector in the time range.
func (p *prom) labelValues(selector, label string) ([]string, error) {
	var values []string
	err := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {selector},
		"start": {ts(p.start)}, "end": {ts(time.Now())}}, &values)
	return values, err
}

type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prom) alerts() []alert {
	p.t.Helper()
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	if err := p.get("/api/v1/alerts", nil, &data); err != nil {
		p.t.Fatal(err)
	}
	return data.Alerts
}

// waitFor polls cond every 200 ms until it is true, and tells whether it
// became true before timeout.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}

// waitForAlert waits until alert name with the labels is pending or firing.
func (p *prom) waitForAlert(name string, labels map[string]string, timeout time.Duration) {
	p.t.Helper()
	var last []alert
	ok := waitFor(timeout, func() bool {
		last = p.alerts()
		return slices.ContainsFunc(last, func(a alert) bool {
			if a.Labels["alertname"] != name || (a.State != "pending" && a.State != "firing") {
				return false
			}
			for k, v := range labels {
				if a.Labels[k] != v {
					return false
				}
			}
			return true
		})
	})
	if !ok {
		p.t.Fatalf("after %v, no %s%v is pending or firing; the alerts: %+v", timeout, name, labels, last)
	}
}

// TestDashboardsAgainstPrometheus runs the real exporter against a
// namespace of the test, and a real Prometheus server that scrapes it
// every second with rules.yml loaded (its high-usage threshold lowered).
// With traffic sent, it checks that:
//
//   - no alert is pending or firing before there is traffic;
//   - the high-usage alerts of a tag and of a tenant go pending: rules.yml's
//     expressions match real series;
//   - every variable query of every dashboard returns values, and every
//     query of every panel, with the variables substituted as Grafana
//     would for the default selection, parses and returns data (traffic
//     queries a value above zero);
//   - the recording rules produce series, and every rule evaluates without
//     error;
//   - a table deleted again and again makes
//     IpacctManagedTableRepairedRepeatedly fire, a rules.yaml that does not
//     load makes IpacctConfigReloadFailing go pending, and a stopped
//     exporter IpacctExporterDown.
//
// It does not show that Grafana draws the panels as meant (the schema test
// checks their JSON), that the 5m, 1d or monthly windows of the rules and
// panels hold over their real length (a test of seconds sees seconds; the
// promtool unit tests cover the rules' windows), nor the alerts' "for".
func TestDashboardsAgainstPrometheus(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "prometheus", "promtool")
	t.Parallel()
	dashboards := loadDashboards(t)
	bin := exetest.Binary(t)
	dir := t.TempDir()

	ns := netnstest.New(t, append(slices.Clone(netnstest.SeedAddrs), "198.51.100.10/32", "198.51.100.11/32")...)
	ns.NFT(netnstest.SeedNFT)
	rulesYAML := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesYAML, []byte(testRulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	exporterAddr := exetest.FreeAddr(t)
	cmd := exec.Command(bin, "--web.listen-address="+exporterAddr, "--netns="+ns.Path(), "--config.file="+rulesYAML,
		"--no-collector.iptables")
	// The test kills the exporter, which leaves its claim file: in a
	// directory of the test's own, not the host's /run/ipacct_exporter.
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+t.TempDir())
	exporter := start(t, "ipacct_exporter", "http://"+exporterAddr+"/metrics", cmd)

	// rules.yml as it is, but for the default threshold of the high-usage
	// alerts.
	rules, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	const defaultThreshold = "expr: vector(1e9)"
	if n := bytes.Count(rules, []byte(defaultThreshold)); n != 1 {
		t.Fatalf("rules.yml has %q %d times, want once: the test lowers it", defaultThreshold, n)
	}
	rules = bytes.Replace(rules, []byte(defaultThreshold), []byte("expr: vector("+testThreshold+")"), 1)
	rulesFile := filepath.Join(dir, "rules.yml")
	promConfig := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(rulesFile, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files: [%[2]q]
scrape_configs:
  - job_name: ipacct
    static_configs:
      - targets: [%[3]q]
`, testScrapeInterval, rulesFile, exporterAddr)
	if err := os.WriteFile(promConfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := exetest.FreeAddr(t)
	p := &prom{t: t, url: "http://" + promAddr, start: time.Now()}
	start(t, "prometheus", p.url+"/-/ready", exec.Command("prometheus",
		"--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr))

	// Before traffic: the rules have data, and nothing is wrong.
	// Prometheus applies new scrape targets at most every 5 s, so the
	// first scrape, and the first rate, take a few seconds.
	if !waitFor(30*time.Second, func() bool {
		a, err1 := p.query(`tag:ipacct_tag_bytes:rate5m{tag="web"}`, 0)
		b, err2 := p.query(`tag:ipacct_ip_bytes:rate5m{tag="rent31"}`, 0)
		return err1 == nil && err2 == nil && len(a) > 0 && len(b) > 0
	}) {
		t.Fatal("after 30s, no tag:ipacct_tag_bytes:rate5m{tag=\"web\"} or tag:ipacct_ip_bytes:rate5m{tag=\"rent31\"} is recorded")
	}
	if a := p.alerts(); len(a) > 0 {
		t.Errorf("alerts before any traffic, with nothing wrong: %+v", a)
	}

	// Traffic, a few seconds of it: the web tag in and out, tenant rent31's
	// addresses out and in, and the seed's tags (whose 198.51.100.1 and
	// 2001:db8:beef::1 are rent31's too). An address's first packets make
	// its set element, which the next scrape sees with them already
	// counted: no rate or increase() can show them. So each address gets
	// traffic over several scrapes.
	for i := 0; i < 5; i++ {
		ns.SendSeedTraffic()
		for _, src := range []string{"198.51.100.10", "198.51.100.11"} {
			ns.SendUDP(src+":4000", "192.0.2.1:80", 1200, 20)
			ns.SendUDP("192.0.2.1:80", src+":4000", 400, 20)
		}
		time.Sleep(500 * time.Millisecond)
	}
	p.waitForAlert("IpacctTagHighUsage", map[string]string{"tag": "web", "direction": "in", "table_family": "inet"}, 20*time.Second)
	p.waitForAlert("IpacctTenantHighUsage", map[string]string{"tag": "rent31", "direction": "out"}, 20*time.Second)

	// A few evaluations with traffic in the recorded rates, so that their
	// 95th percentile over the test's short range is above zero.
	if !waitFor(15*time.Second, func() bool {
		r, err := p.query(`min_over_time(tag:ipacct_ip_bytes:rate5m{tag="rent31"}[3s]) > 0`, 0)
		return err == nil && len(r) == 2
	}) {
		t.Fatal("after 15s, tag:ipacct_ip_bytes:rate5m of rent31 has not been above 0 for 3s, in and out")
	}

	// Every variable and every panel query of every dashboard.
	for _, d := range dashboards {
		t.Run(strings.TrimSuffix(d.file, ".json"), func(t *testing.T) {
			checkDashboardQueries(t, p, d)
		})
	}

	// The recording rules, and the health of every rule.
	for _, q := range []string{`tag:ipacct_tag_bytes:rate5m{tag="web"}`, `tag:ipacct_ip_bytes:rate5m{tag="rent31"}`} {
		r, err := p.query(q, 0)
		if err != nil || len(r) == 0 || !positive(r) {
			t.Errorf("%s: %v, %+v; want series with traffic", q, err, r)
		}
	}
	if r, err := p.query(`ipacct:high_usage_threshold:bits_per_second`, 0); err != nil || len(r) != 1 || !slices.Equal(r[0].values(), []float64{1000}) {
		t.Errorf("ipacct:high_usage_threshold:bits_per_second: %v, %+v; want the test's 1000", err, r)
	}
	var ruleData struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", nil, &ruleData); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range ruleData.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" || r.LastError != "" {
				t.Errorf("rule %s of %s: health %q, %s", r.Name, g.Name, r.Health, r.LastError)
			}
		}
	}
	want := 0
	for _, g := range loadRules(t).Groups {
		want += len(g.Rules)
	}
	if n != want {
		t.Errorf("Prometheus has %d rules, rules.yml %d", n, want)
	}

	// Another program deletes the exporter's table again and again: each
	// time the exporter repairs it (waiting longer each time), and the
	// alert fires.
	for i := 0; i < 4; i++ {
		if !waitFor(15*time.Second, func() bool { return strings.Contains(ns.Run("nft", "list", "tables"), "table inet ipacct") }) {
			t.Fatalf("the table was not repaired after deletion %d", i)
		}
		ns.Run("nft", "delete", "table", "inet", "ipacct")
	}
	p.waitForAlert("IpacctManagedTableRepairedRepeatedly", map[string]string{"job": "ipacct", "instance": exporterAddr}, 30*time.Second)

	// A rules.yaml that does not load: the old rules stay, and the alert
	// goes pending.
	if err := os.WriteFile(rulesYAML, []byte("accounting: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exporter.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitForAlert("IpacctConfigReloadFailing", map[string]string{"job": "ipacct", "instance": exporterAddr}, 15*time.Second)

	// The exporter stops.
	_ = exporter.Process.Kill()
	p.waitForAlert("IpacctExporterDown", map[string]string{"job": "ipacct", "instance": exporterAddr}, 15*time.Second)
}

// positive tells whether some value of the result is above zero.
func positive(r []sample) bool {
	for _, s := range r {
		for _, v := range s.values() {
			if v > 0 {
				return true
			}
		}
	}
	return false
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// checkDashboardQueries resolves the dashboard's variables as Grafana does
// for its default selection (All where it is selected, else the first
// value in the variable's sort order), then evaluates every panel target.
func checkDashboardQueries(t *testing.T, p *prom, d *dashboard) {
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			vars[v.Name] = "prometheus"
			continue
		case "query":
		default:
			t.Fatalf("variable %s: type %s, which the test cannot resolve", v.Name, v.Type)
		}
		m := labelValuesQuery.FindStringSubmatch(v.query())
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, v.query())
		}
		selector := interpolate(m[1], vars, "", nil)
		values, err := p.labelValues(selector, m[2])
		if err != nil || len(values) == 0 {
			t.Fatalf("variable %s: label_values(%s, %s): %v, %v; want values", v.Name, selector, m[2], values, err)
		}
		if v.Sort != 1 {
			t.Fatalf("variable %s: sort %d; the test knows 1, alphabetical", v.Name, v.Sort)
		}
		slices.Sort(values)
		if v.isAll() {
			vars[v.Name] = v.AllValue
		} else {
			vars[v.Name] = values[0]
		}
		t.Logf("$%s = %s (of %v)", v.Name, vars[v.Name], values)
	}
	queries := 0
	for _, pnl := range d.allPanels() {
		for _, tg := range pnl.Targets {
			queries++
			interval := testStep
			intervalText := ""
			if pnl.Interval != "" {
				// The panel's minimum interval: Grafana's step and
				// $__interval are at least this.
				iv, err := time.ParseDuration(pnl.Interval)
				if err != nil {
					t.Fatalf("panel %q: interval %q: %v", pnl.Title, pnl.Interval, err)
				}
				interval, intervalText = max(iv, testStep), pnl.Interval
			}
			rangeText := fmt.Sprintf("%ds", int(time.Since(p.start).Seconds())+1)
			expr := interpolate(tg.Expr, vars, rangeText, map[string]string{"__interval": intervalText})
			step := interval
			if tg.Instant {
				step = 0
			}
			r, err := p.query(expr, step)
			where := fmt.Sprintf("panel %q target %s: %s", pnl.Title, tg.RefID, expr)
			switch {
			case err != nil:
				t.Errorf("%s: %v", where, err)
			case len(r) == 0:
				t.Errorf("%s: no data", where)
			case isTraffic(expr) && !positive(r):
				t.Errorf("%s: traffic was sent, but every value is 0: %+v", where, r)
			}
		}
	}
	if queries == 0 {
		t.Error("no queries")
	}
}

// isTraffic tells whether expr reads the traffic counters, which the test
// made grow, rather than a gauge or the overflow counters, which stay 0.
func isTraffic(expr string) bool {
	return !strings.Contains(expr, "overflow") &&
		(strings.Contains(expr, "bytes_total") || strings.Contains(expr, "packets_total") || strings.Contains(expr, ":rate5m"))
}

// interpolate substitutes the variables in s as Grafana does for a
// Prometheus query: vars by name, $__rate_interval and $__range with the
// test's windows, and extra built-ins (empty: the default step).
func interpolate(s string, vars map[string]string, rangeText string, extra map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[3]
		switch name {
		case "__rate_interval":
			return testRateInterval
		case "__range":
			return rangeText
		}
		if v, ok := extra[name]; ok {
			if v == "" {
				return fmt.Sprintf("%ds", int(testStep.Seconds()))
			}
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		return ref
	})
}
