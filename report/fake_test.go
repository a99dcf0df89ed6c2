package report

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// fakeProm answers the range-vector queries the report makes from series in
// memory, like Prometheus 2 (a range closed at its start) or, with leftOpen,
// like Prometheus 3. It knows the __name__ and tag matchers the report
// writes, and ignores any other.
type fakeProm struct {
	series   model.Matrix
	leftOpen bool
	queries  atomic.Int64
}

var (
	fakeRange = regexp.MustCompile(`\[(\d+)ms\]$`)
	fakeMatch = regexp.MustCompile(`(__name__|tag)=~("(?:[^"\\]|\\.)*")`)
)

func (f *fakeProm) Query(_ context.Context, query string, ts time.Time) (model.Value, []string, error) {
	f.queries.Add(1)
	m := fakeRange.FindStringSubmatch(query)
	if m == nil {
		return nil, nil, &APIError{StatusCode: 400, Type: "bad_data", Message: "fake: not a range query: " + query}
	}
	width, _ := strconv.ParseInt(m[1], 10, 64)
	matchers := map[model.LabelName]*regexp.Regexp{}
	for _, mm := range fakeMatch.FindAllStringSubmatch(query, -1) {
		re, err := strconv.Unquote(mm[2])
		if err != nil {
			return nil, nil, err
		}
		matchers[model.LabelName(mm[1])] = regexp.MustCompile("^(?:" + re + ")$")
	}
	end := ts.UnixMilli()
	start := end - width
	out := model.Matrix{}
series:
	for _, s := range f.series {
		for name, re := range matchers {
			if !re.MatchString(string(s.Metric[name])) {
				continue series
			}
		}
		var values []model.SamplePair
		for _, p := range s.Values {
			t := int64(p.Timestamp)
			if t <= end && (t > start || (!f.leftOpen && t == start)) {
				values = append(values, p)
			}
		}
		if len(values) > 0 {
			out = append(out, &model.SampleStream{Metric: s.Metric.Clone(), Values: values})
		}
	}
	return out, nil, nil
}

// ServeHTTP answers /api/v1/query like Prometheus' HTTP API.
func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	sec, err := strconv.ParseFloat(r.FormValue("time"), 64)
	if err != nil {
		http.Error(w, `{"status":"error","errorType":"bad_data","error":"bad time"}`, http.StatusBadRequest)
		return
	}
	v, _, err := f.Query(r.Context(), r.FormValue("query"), time.UnixMilli(int64(sec*1000+0.5)))
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%q}`, err.Error())
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "matrix", "result": v},
	})
}

// stream builds a raw series from a metric in text, such as
// `ipacct_ip_bytes_total{tag="t1",ip="192.0.2.1",direction="in"}`, and pairs
// of seconds after base and values.
func stream(t *testing.T, metric string, base time.Time, pairs ...float64) *model.SampleStream {
	t.Helper()
	name, rest, _ := strings.Cut(metric, "{")
	m := model.Metric{model.MetricNameLabel: model.LabelValue(name)}
	rest = strings.TrimSuffix(rest, "}")
	for _, kv := range strings.Split(rest, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad label %q", kv)
		}
		uv, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("bad label value %q", v)
		}
		m[model.LabelName(k)] = model.LabelValue(uv)
	}
	s := &model.SampleStream{Metric: m}
	for i := 0; i+1 < len(pairs); i += 2 {
		at := base.Add(time.Duration(pairs[i] * float64(time.Second)))
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(at.UnixNano()), Value: model.SampleValue(pairs[i+1])})
	}
	return s
}
