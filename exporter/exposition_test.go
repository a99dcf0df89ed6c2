package exporter

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
	"github.com/ipacct/ipacct_exporter/tag"
)

// expositionReading has what makes the exposition hard: descriptions with
// quotes, backslashes, newlines and non-ASCII, a tag in two namespaces,
// IPv4 and IPv6 addresses of two tags and both directions (so that their
// text orders interleave), an address in two sets, an overflow counter,
// values in every notation of the formats (0, 1, below and above 1e6 and
// 2^53), and invalid comments.
func expositionReading(step uint64) collector.Reading {
	r := collector.Reading{
		Records: []collector.Record{
			{Tag: "web", Direction: tag.In, Family: family.IP, Description: `say "hi" \ ünïcödé` + "\nline two", Packets: 1, Bytes: 1_000_000 + step, ID: 1},
			{Tag: "web", Direction: tag.Out, Family: family.IP6, Packets: 0, Bytes: 0, ID: 2},
			{Tag: "big", Direction: tag.None, Family: family.Inet, Description: "Big", Packets: 1 << 53, Bytes: math.MaxUint64 - 5, ID: 3},
			{Tag: "mid", Direction: tag.In, Family: family.Inet, Packets: 123_456_789, Bytes: 9_007_199_254_740_991, ID: 4},
		},
		Invalid: []collector.InvalidComment{{Where: "ip filter INPUT", Comment: "=bad tag=", Err: errors.New("bad")}},
	}
	set := func(tagName string, dir tag.Direction, fam family.Address, where string, handle uint64, addrs ...string) collector.AddressSet {
		s := collector.AddressSet{Tag: tagName, Direction: dir, Family: fam, Where: where, Handle: handle, Capacity: 100}
		for i, a := range addrs {
			s.Elements = append(s.Elements, collector.AddressCount{Addr: netip.MustParseAddr(a), Packets: uint64(i) + step, Bytes: uint64(i)*999_999 + step})
		}
		return s
	}
	r.Sets = []collector.AddressSet{
		set("rent", tag.Out, family.IPv4, "inet t set a", 1, "192.0.2.1", "192.0.2.10", "192.0.2.2", "10.0.0.1", "203.0.113.9"),
		set("rent", tag.Out, family.IPv6, "inet t set a6", 2, "2001:db8::1", "2001:db8::a", "::ffff:192.0.2.1"),
		set("rent", tag.In, family.IPv4, "inet t set b", 3, "192.0.2.1", "198.51.100.7"),
		set("srv", tag.Out, family.IPv4, "inet t set c", 4, "192.0.2.1", "192.0.2.3"),
		set("srv", tag.Out, family.IPv4, "inet t set d", 5, "192.0.2.3"), // in two sets
	}
	r.Sets[0].Overflow = &collector.Counter{Packets: 3, Bytes: 4_500_000}
	if step > 1 {
		// New while running: served at 0 first, with a created time.
		r.Records = append(r.Records, collector.Record{Tag: "late", Direction: tag.Out, Family: family.IP, Description: "Late", Packets: 5, Bytes: 5000, ID: 5})
		r.Sets[0].Elements = append(r.Sets[0].Elements, collector.AddressCount{Addr: netip.MustParseAddr("192.0.2.200"), Packets: 7, Bytes: 7_000_000})
	}
	return r
}

// TestExpositionAsExpfmt: what Handler writes is byte for byte what
// promhttp writes for the same families, after a registry has sorted and
// checked them, in every format Prometheus negotiates, with and without
// gzip; and the text format passes promtool check metrics.
func TestExpositionAsExpfmt(t *testing.T) {
	for _, withNS := range []bool{false, true} {
		t.Run("netns="+strconv.FormatBool(withNS), func(t *testing.T) {
			nft := &fakeBackend{reading: expositionReading(1)}
			legacy := &fakeBackend{reading: collector.Reading{Records: []collector.Record{rec("web", tag.In, family.IP, "from legacy", 10, 1000)}}}
			list := []Collector{{Name: "nftables", Collector: nft}, {Name: "iptables", Collector: legacy, Feeds: Feeds{TagFamilies: []family.Table{family.IP}, NoSets: true}}}
			var e *Exporter
			if withNS {
				list = append(list, Collector{Name: "nftables", NetNS: "b\"\\", Collector: &fakeBackend{reading: expositionReading(3)}})
				list[0].NetNS, list[1].NetNS = "a", "a"
				e = NewForNamespaces(slog.New(slog.DiscardHandler), 0, func() []Collector { return list })
			} else {
				e = New(slog.New(slog.DiscardHandler), 0, list...)
			}
			clock := time.Unix(1_800_000_000, 123_000_000)
			e.now = func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector())
			h := Handler(e, reg, slog.New(slog.DiscardHandler))

			for step := uint64(1); step <= 4; step++ {
				nft.reading = expositionReading(step)
				legacy.err = nil
				if step == 4 {
					legacy.err = errors.New("xtables lock held") // withholds web in ip
				}
				// A series new in this step is served at 0 once: compare
				// the scrapes after that one, which serve the same.
				if _, err := e.Gather(); err != nil {
					t.Fatal(err)
				}
				// The exporter's families as a registry would serve them:
				// normalized, checked for duplicates and consistency.
				fams, err := e.Gather()
				if err != nil {
					t.Fatal(err)
				}
				checked, err := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil })}.Gather()
				if err != nil {
					t.Fatalf("step %d: the registry refuses the families: %v", step, err)
				}
				// Beside the registry's families as it gathers them
				// (prometheus.Gatherers would drop their units).
				theirs, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				all := append(checked, theirs...)
				slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
				want := promhttp.HandlerFor(staticGatherer(all),
					promhttp.HandlerOpts{EnableOpenMetrics: true, EnableOpenMetricsTextCreatedSamples: true})
				// Handler reads again; with the same reading it serves the
				// same values (but for the durations, left out).
				var names []string
				for _, f := range checked {
					if f.GetName() != durationName {
						names = append(names, f.GetName())
					}
				}
				for _, accept := range []string{
					"application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
					"application/openmetrics-text;version=0.0.1",
					"text/plain;version=1.0.0;escaping=allow-utf-8",
					"text/plain;version=0.0.4",
					"",
					"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
				} {
					q := url.Values{"name[]": append(names, "go_info", "go_gc_gogc_percent")}
					wantBody, wantType := get(t, want, accept, q, false)
					gotBody, gotType := get(t, h, accept, q, false)
					gzBody, _ := get(t, h, accept, q, true)
					if gotType != wantType {
						t.Errorf("step %d, Accept %q: Content-Type %q, promhttp's %q", step, accept, gotType, wantType)
					}
					if !bytes.Equal(gotBody, wantBody) || !bytes.Equal(gzBody, wantBody) {
						t.Errorf("step %d, Accept %q: the exposition differs from promhttp's:\n%s", step, accept, diffLines(string(wantBody), string(gotBody)))
					}
					if step == 3 && accept == "text/plain;version=0.0.4" {
						promtoolCheck(t, gotBody)
					}
					if strings.HasPrefix(gotType, "application/openmetrics-text") && step >= 2 &&
						!(bytes.Contains(gotBody, []byte("\nipacct_tag_bytes_created{")) && bytes.Contains(gotBody, []byte("\nipacct_ip_packets_created{"))) {
						t.Errorf("step %d: no created lines for the series new in step 2:\n%s", step, gotBody)
					}
				}
			}
		})
	}
}

type staticGatherer []*dto.MetricFamily

func (s staticGatherer) Gather() ([]*dto.MetricFamily, error) { return s, nil }

// get GETs /metrics of h with the Accept header and query, and returns the
// body, gunzipped when asked for gzip, and its Content-Type.
func get(t *testing.T, h http.Handler, accept string, q url.Values, gz bool) ([]byte, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics?"+q.Encode(), nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if gz {
		if w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("asked for gzip, got Content-Encoding %q", w.Header().Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return body, w.Header().Get("Content-Type")
}

func promtoolCheck(t *testing.T, text []byte) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		netnstest.Skip(t, "promtool not installed")
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// diffLines shows the first lines where two texts differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\nwant " + strconv.Quote(wl) + "\ngot  " + strconv.Quote(gl)
		}
	}
	return "(no line differs)"
}

// TestAppendValue: a counter's value as expfmt writes its float64, in
// both formats, across every magnitude.
func TestAppendValue(t *testing.T) {
	values := []uint64{0, 1, 2, 9, 10, 999_999, 1_000_000, 1_000_001, 1_200_000, 123_456_789, 1e15, 1<<53 - 1, 1 << 53, 1<<53 + 1, math.MaxUint64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		values = append(values, r.Uint64()>>r.UintN(64))
	}
	for _, v := range values {
		text := strconv.AppendFloat(nil, float64(v), 'g', -1, 64)
		if got := appendValue(nil, v, false); !bytes.Equal(got, text) {
			t.Fatalf("%d in the text format: %s, want %s", v, got, text)
		}
		if got, want := appendValue(nil, v, true), appendOMFloat(nil, float64(v)); !bytes.Equal(got, want) {
			t.Fatalf("%d in OpenMetrics: %s, want %s", v, got, want)
		}
	}
}

// TestLabelNamesSorted: the families' label names are in name order, with
// netns or without, as the registry orders them and the exposition writes
// them by hand.
func TestLabelNamesSorted(t *testing.T) {
	for _, names := range [][]string{collectorLabels, tagLabels, infoLabels, setGroupLabels, addressLabels} {
		for _, withNS := range []bool{false, true} {
			if n := labelNames(withNS, names); !slices.IsSorted(n) || withNS != slices.Contains(n, netnsLabel) {
				t.Errorf("label names %q (netns %v) are not sorted, or netns is missing", n, withNS)
			}
		}
	}
}
