package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The store's answers are not trusted: a sample that no counter can hold is
// skipped, and said, rather than billed.

// rawSeries is a counter series of one answer: its labels and its samples,
// checked, in time order, each with the created timestamp stored at its time.
type rawSeries struct {
	metric  model.Metric
	pairs   []model.SamplePair // as answered, until checked
	samples []sample
}

// checkAnswer checks an answer's series and returns the counter series by
// their text, each with its created timestamps. It skips, with a warning
// naming the series and the time:
//   - series without a tag label, or an ipacct_ip_* series without an ip;
//   - samples that are not counter values: infinite, negative, or above
//     what a 64-bit counter holds; created timestamps that are not a
//     positive number;
//   - samples of one series with one timestamp and different values.
//
// NaN samples are skipped without a warning: a NaN is how a staleness marker
// (the end of a series) comes through the HTTP API of stores that return
// them, such as VictoriaMetrics, and no counter is NaN.
//
// Samples out of time order are put in order, with a warning: a total must
// not depend on the order of an answer.
func (e *engine) checkAnswer(m model.Matrix) map[string]*rawSeries {
	counters := map[string]*rawSeries{}
	created := map[string][]model.SamplePair{} // by the counter's text
	for _, ss := range m {
		name := string(ss.Metric[model.MetricNameLabel])
		counter, isCreated := strings.CutSuffix(name, createdSuffix)
		if isCreated {
			counter += totalSuffix
		}
		switch counter {
		case ipBytes, ipPackets, tagBytes, tagPackets:
		default:
			continue
		}
		metric := ss.Metric
		if isCreated {
			metric = ss.Metric.Clone()
			metric[model.MetricNameLabel] = model.LabelValue(counter)
		}
		id := metric.String()
		if !e.labelled(id, metric) {
			continue
		}
		if isCreated {
			created[id] = append(created[id], ss.Values...)
			continue
		}
		rs := counters[id]
		if rs == nil {
			rs = &rawSeries{metric: metric}
			counters[id] = rs
		}
		rs.pairs = append(rs.pairs, ss.Values...)
	}
	for id, rs := range counters {
		createdID := createdName(string(rs.metric[model.MetricNameLabel])) + strings.TrimPrefix(id, string(rs.metric[model.MetricNameLabel]))
		createdAt := map[int64]int64{}
		for _, p := range e.inOrder(createdID, created[id]) {
			if c := float64(p.Value); math.IsNaN(c) {
				continue // a staleness marker
			} else if math.IsInf(c, 0) || c <= 0 || c > math.MaxInt64/1000 {
				e.warnings.add("%s at %s: skipped created timestamp %v: not a time", createdID, formatMilli(int64(p.Timestamp)), c)
				continue
			}
			createdAt[int64(p.Timestamp)] = int64(math.Round(float64(p.Value) * 1000))
		}
		for _, p := range e.inOrder(id, rs.pairs) {
			v := float64(p.Value)
			if math.IsNaN(v) {
				continue // a staleness marker
			}
			if math.IsInf(v, 0) || v < 0 || v >= maxCounter {
				e.warnings.add("%s at %s: skipped sample %v: not a counter value", id, formatMilli(int64(p.Timestamp)), v)
				continue
			}
			rs.samples = append(rs.samples, sample{t: int64(p.Timestamp), v: v, created: createdAt[int64(p.Timestamp)]})
		}
		rs.pairs = nil
	}
	return counters
}

// labelled reports whether the series has the labels the report sums by,
// and warns once about each that has not.
func (e *engine) labelled(id string, m model.Metric) bool {
	missing := ""
	switch {
	case m["tag"] == "":
		missing = "tag"
	case strings.HasPrefix(string(m[model.MetricNameLabel]), "ipacct_ip_") && m["ip"] == "":
		missing = "ip"
	default:
		return true
	}
	if !e.unlabelled[id] {
		e.unlabelled[id] = true
		e.warnings.add("%s: skipped: no %s label", id, missing)
	}
	return false
}

// inOrder returns the samples of the series id sorted by time, without those
// that share a time with a different value; it warns when they were out of
// order or clashed.
func (e *engine) inOrder(id string, pairs []model.SamplePair) []model.SamplePair {
	byTime := func(a, b model.SamplePair) int { return cmp.Compare(a.Timestamp, b.Timestamp) }
	if !slices.IsSortedFunc(pairs, byTime) {
		e.warnings.add("%s: samples out of time order from %s: put in order", id, formatMilli(int64(pairs[0].Timestamp)))
		slices.SortStableFunc(pairs, byTime)
	}
	out := pairs[:0]
	for i := 0; i < len(pairs); {
		j := i + 1
		clash := false
		for j < len(pairs) && pairs[j].Timestamp == pairs[i].Timestamp {
			clash = clash || !pairs[j].Value.Equal(pairs[i].Value)
			j++
		}
		if clash {
			e.warnings.add("%s at %s: skipped %d samples with one time and different values", id, formatMilli(int64(pairs[i].Timestamp)), j-i)
		} else {
			out = append(out, pairs[i])
		}
		i = j
	}
	return out
}

// formatMilli writes milliseconds since the epoch as an RFC 3339 time in UTC.
func formatMilli(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// maxWarnings is how many warnings a report keeps; the rest are counted.
const maxWarnings = 50

// warnings are the report's warnings, each once, at most maxWarnings.
type warnings struct {
	list []string
	more int
}

func (w *warnings) add(format string, args ...any) {
	w.addAll([]string{fmt.Sprintf(format, args...)})
}

func (w *warnings) addAll(msgs []string) {
	for _, m := range msgs {
		switch {
		case slices.Contains(w.list, m):
		case len(w.list) < maxWarnings:
			w.list = append(w.list, m)
		default:
			w.more++
		}
	}
}

// result is the warnings, and a last one saying how many more there were.
func (w *warnings) result() []string {
	if w.more == 0 {
		return w.list
	}
	return append(slices.Clip(w.list), fmt.Sprintf("%d more warnings not shown", w.more))
}
