package dashboards

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// timeScale shrinks the durations of rules.yml for the test's copy: a
// minute there is a second here (for: 10m is 10s, rate's [5m] is [5s],
// the spike baseline's [1d] offset 15m is [24m] offset 15s). Prometheus
// scrapes and evaluates every second, so each window still holds samples.
const timeScale = 60

// scaledRules is rules.yml with every duration of its "for" and "expr"
// values divided by timeScale; nothing else changes.
func scaledRules(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	scaled := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Kind == yaml.MappingNode && (n.Content[i].Value == "for" || n.Content[i].Value == "expr") {
				v := n.Content[i+1]
				v.Value = promDuration.ReplaceAllStringFunc(v.Value, func(s string) string {
					m := promDuration.FindStringSubmatch(s)
					d, err := model.ParseDuration(m[2])
					if err != nil {
						t.Fatalf("%q: %v", s, err)
					}
					scaled++
					return m[1] + model.Duration(time.Duration(d)/timeScale).String()
				})
				if n.Content[i].Value == "for" && !promDuration.MatchString(v.Value) {
					t.Fatalf("for: %q was not scaled", v.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if scaled < 10 {
		t.Fatalf("only %d durations scaled in rules.yml", scaled)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// promDuration is a duration in a "for" value (the whole of it) or in
// PromQL: a range [5m] or an offset.
var promDuration = regexp.MustCompile(`(^|\[|offset\s+)(\d+[smhdwy])`)

// notification is what Alertmanager's webhook receiver posts.
type notification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// webhook is a receiver of Alertmanager's notifications on 127.0.0.1.
type webhook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []notification
	errs []string
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n notification
		err := json.NewDecoder(r.Body).Decode(&n)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.errs = append(w.errs, fmt.Sprintf("%s: %v", r.URL.Path, err))
		} else if p := "/" + n.Receiver; r.URL.Path != p {
			w.errs = append(w.errs, fmt.Sprintf("receiver %s posted to %s", n.Receiver, r.URL.Path))
		}
		w.got = append(w.got, n)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// find returns the annotations of alert name for tag and direction, as a
// notification of the receiver with the status (firing or resolved) last
// brought it.
func (w *webhook) find(receiver, status, name, tag, direction string) (map[string]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range slices.Backward(w.got) {
		for _, a := range n.Alerts {
			if n.Receiver == receiver && a.Status == status && a.Labels["alertname"] == name &&
				a.Labels["tag"] == tag && a.Labels["direction"] == direction {
				return a.Annotations, true
			}
		}
	}
	return nil, false
}

func (w *webhook) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := json.MarshalIndent(w.got, "", "  ")
	return string(b)
}

// alertmanagerConfig is alertmanager.yml with each webhook posting to the
// test's receiver, at /RECEIVER, and the route's waits cut to a second.
func alertmanagerConfig(t *testing.T, url string) []byte {
	t.Helper()
	b, err := os.ReadFile("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`(?m)^(\s+- url: )http://alerts\.example\.net(/[a-z-]+)$`), "${1}" + url + "${2}"},
		{regexp.MustCompile(`(?m)^(\s+(?:group_wait|group_interval): )\w+$`), "${1}1s"},
	} {
		if !r.re.Match(b) {
			t.Fatalf("alertmanager.yml has no line matching %s", r.re)
		}
		b = r.re.ReplaceAll(b, []byte(r.with))
	}
	return b
}

// TestAlertsReachReceiver proves the whole path of the spike alerts: the
// exporter counts a burst of traffic on a tag and on a tenant, Prometheus
// (with rules.yml's durations scaled, see timeScale) fires
// IpacctTagBandwidthSpike and IpacctTenantBandwidthSpike, Debian's
// Alertmanager, configured by alertmanager.yml, delivers them to a webhook
// on 127.0.0.1 with the tag, the direction and the rate in the message, and
// when the traffic stops, delivers them resolved.
func TestAlertsReachReceiver(t *testing.T) {
	netnstest.RequireRoot(t, "nft", "prometheus", "prometheus-alertmanager")
	t.Parallel() // mostly waiting, as TestDashboardsAgainstPrometheus is
	bin := exetest.Binary(t)
	dir := t.TempDir()

	ns := netnstest.New(t, "192.0.2.1/32", "198.51.100.10/32")
	rulesYAML := filepath.Join(dir, "rules.yaml")
	write(t, rulesYAML, []byte(testRulesYAML))
	exporterAddr := exetest.FreeAddr(t)
	start(t, "ipacct_exporter", "http://"+exporterAddr+"/metrics", exec.Command(bin,
		"--web.listen-address="+exporterAddr, "--netns="+ns.Path(), "--config.file="+rulesYAML,
		"--no-collector.iptables"))

	hook := newWebhook(t)
	amConfig := filepath.Join(dir, "alertmanager.yml")
	write(t, amConfig, alertmanagerConfig(t, hook.srv.URL))
	amAddr := exetest.FreeAddr(t)
	start(t, "alertmanager", "http://"+amAddr+"/-/ready", exec.Command("prometheus-alertmanager",
		"--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address="))

	rulesFile := filepath.Join(dir, "rules.yml")
	write(t, rulesFile, scaledRules(t))
	promConfig := filepath.Join(dir, "prometheus.yml")
	write(t, promConfig, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: ipacct
    static_configs:
      - targets: [%q]
`, rulesFile, amAddr, exporterAddr))
	promAddr := exetest.FreeAddr(t)
	p := &prom{t: t, url: "http://" + promAddr, start: time.Now()}
	start(t, "prometheus", p.url+"/-/ready", exec.Command("prometheus",
		"--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr))

	// A quiet baseline first: the spike alerts compare with the average
	// of the day before (here 24m) that ended 15m (here 15s) ago, and
	// without one they cannot fire. After 60 quiet evaluations, a burst
	// would have to last about 35s before it made up a quarter of the
	// baseline and the alerts resolved without the traffic stopping; they
	// fire about 13s in (10s of "for"), and the traffic stops then.
	const quiet = 60
	spikes := []struct{ alert, tag, direction, series string }{
		{"IpacctTagBandwidthSpike", "web", "in", `tag:ipacct_tag_bytes:rate5m{tag="web",direction="in"}`},
		{"IpacctTenantBandwidthSpike", "rent31", "out", `tag:ipacct_ip_bytes:rate5m{tag="rent31",direction="out"}`},
	}
	if !waitFor(2*quiet*time.Second, func() bool {
		for _, s := range spikes {
			r, err := p.query(fmt.Sprintf("count_over_time(%s[1h]) >= %d", s.series, quiet), 0)
			if err != nil || len(r) == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("after %ds, Prometheus has not recorded %d evaluations of the spike alerts' series", 2*quiet, quiet)
	}
	if a := p.alerts(); len(a) > 0 {
		t.Fatalf("alerts before any traffic: %+v", a)
	}

	// The burst, until both alerts reach the receiver: about 3 Mbit/s
	// from tenant rent31's 198.51.100.10 to the web tag's UDP port 80.
	fired := func() bool {
		for _, s := range spikes {
			if _, ok := hook.find("ipacct-traffic", "firing", s.alert, s.tag, s.direction); !ok {
				return false
			}
		}
		return true
	}
	burst := time.Now()
	for deadline := time.Now().Add(60 * time.Second); !fired(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s of traffic, the receiver has not had both spike alerts firing; Prometheus' alerts %+v; the receiver got %s", p.alerts(), hook)
		}
		ns.SendUDP("198.51.100.10:4000", "192.0.2.1:80", 1200, 30)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("both delivered firing %.0fs into the burst", time.Since(burst).Seconds())
	for _, s := range spikes {
		a, _ := hook.find("ipacct-traffic", "firing", s.alert, s.tag, s.direction)
		t.Logf("%s: %s: %s", s.alert, a["summary"], a["description"])
		checkMessage(t, s.alert, a, s.tag, s.direction)
	}
	stopped := time.Now()

	// Quiet again: both are delivered resolved.
	if !waitFor(60*time.Second, func() bool {
		for _, s := range spikes {
			if _, ok := hook.find("ipacct-traffic", "resolved", s.alert, s.tag, s.direction); !ok {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("60s after the traffic stopped, the receiver has not had both spike alerts resolved: %s", hook)
	}
	t.Logf("both delivered resolved %.0fs after the burst", time.Since(stopped).Seconds())
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.errs) > 0 {
		t.Errorf("the receiver: %v", hook.errs)
	}
}

// rateInMessage is a rate as the alerts' descriptions write it, with
// Prometheus' humanize: 2.945Mbit/s.
var rateInMessage = regexp.MustCompile(`(\d+(?:\.\d+)?)([kMG]?)bit/s`)

// checkMessage checks that a delivered alert names the tag and the
// direction in its summary and description, and a rate above the alerts'
// floor of 1 Mbit/s in its description.
func checkMessage(t *testing.T, alert string, annotations map[string]string, tag, direction string) {
	t.Helper()
	summary, description := annotations["summary"], annotations["description"]
	if !strings.Contains(summary, " "+tag+" ("+direction+")") {
		t.Errorf("%s: summary %q does not name tag %s and direction %s", alert, summary, tag, direction)
	}
	if !strings.Contains(description, " "+tag+", direction "+direction+",") {
		t.Errorf("%s: description %q does not name tag %s and direction %s", alert, description, tag, direction)
	}
	m := rateInMessage.FindStringSubmatch(description)
	if m == nil {
		t.Fatalf("%s: no rate in %q", alert, description)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	v *= map[string]float64{"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m[2]]
	if v <= 1e6 {
		t.Errorf("%s: rate %s in %q, want above the 1 Mbit/s the alert needs", alert, m[0], description)
	}
}

// write writes a file of the test, failing it on error.
func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
