package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/common/model"
)

// The answers of a server that answers like Prometheus, but not as
// Prometheus would: each is served on 127.0.0.1 and read by the command.

// goodTag is a series beside every bad one, whose total must stay right:
// 60 s after the start the first sample, then 200 and 100 more.
func goodTag(t *testing.T) *model.SampleStream {
	return stream(t, `ipacct_tag_bytes_total{tag="good",direction="in",table_family="ip"}`, t0, 60, 1000, 180, 1200, 240, 1300)
}

// jsonReportOf runs the command against series on a fake server and returns
// the JSON report, its warnings and the exit code.
func jsonReportOf(t *testing.T, series model.Matrix) (r jsonReport, code int, stderr string) {
	t.Helper()
	srv := httptest.NewServer(&fakeProm{series: series})
	defer srv.Close()
	c := command(srv.URL)
	c.Format = "json"
	code, out, stderr := run(c)
	if code == ExitOK {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
	}
	return r, code, stderr
}

func bytesOfTag(r jsonReport, name string) (uint64, bool) {
	for _, t := range r.Tags {
		if t.Tag == name {
			return t.In.Bytes + t.Out.Bytes, true
		}
	}
	return 0, false
}

func TestBadSamples(t *testing.T) {
	const series = `ipacct_tag_bytes_total{tag="t",direction="in",table_family="ip"}`
	const id = `ipacct_tag_bytes_total{direction="in", table_family="ip", tag="t"}`
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name    string
		streams func(t *testing.T) model.Matrix
		want    uint64 // t's bytes
		warning string
	}{
		// 100 at 60 s (first: counts nothing), 300 at 180 s, 400 at 240 s:
		// 300, whatever is at 120 s.
		// NaN: a staleness marker, as VictoriaMetrics returns them; no
		// counter is NaN.
		{"NaN", one(series, 60, 100, 120, nan, 180, 300, 240, 400), 300, ""},
		{"+Inf", one(series, 60, 100, 120, inf, 180, 300, 240, 400), 300,
			id + " at 2026-10-01T00:02:00.000Z: skipped sample +Inf: not a counter value"},
		{"-Inf", one(series, 60, 100, 120, -inf, 180, 300, 240, 400), 300,
			id + " at 2026-10-01T00:02:00.000Z: skipped sample -Inf: not a counter value"},
		{"negative", one(series, 60, 100, 120, -5, 180, 300, 240, 400), 300,
			id + " at 2026-10-01T00:02:00.000Z: skipped sample -5: not a counter value"},
		{"above a 64-bit counter", one(series, 60, 100, 120, 1e20, 180, 300, 240, 400), 300,
			id + " at 2026-10-01T00:02:00.000Z: skipped sample 1e+20: not a counter value"},
		{"out of order", one(series, 60, 100, 240, 400, 180, 300, 120, 150), 300,
			id + ": samples out of time order from 2026-10-01T00:01:00.000Z: put in order"},
		{"one time, two values", one(series, 60, 100, 120, 150, 120, 999, 180, 300, 240, 400), 300,
			id + " at 2026-10-01T00:02:00.000Z: skipped 2 samples with one time and different values"},
		{"one series twice", func(t *testing.T) model.Matrix {
			return model.Matrix{stream(t, series, t0, 60, 100, 180, 300), stream(t, series, t0, 120, 150, 240, 400)}
		}, 300, id + ": samples out of time order from 2026-10-01T00:01:00.000Z: put in order"},
		{"created timestamp NaN (a staleness marker)", func(t *testing.T) model.Matrix {
			return model.Matrix{
				stream(t, series, t0, 60, 100, 180, 300, 240, 400),
				stream(t, `ipacct_tag_bytes_created{tag="t",direction="in",table_family="ip"}`, t0, 60, nan),
			}
		}, 300, ""},
		{"created timestamp -Inf", func(t *testing.T) model.Matrix {
			return model.Matrix{
				stream(t, series, t0, 60, 100, 180, 300, 240, 400),
				stream(t, `ipacct_tag_bytes_created{tag="t",direction="in",table_family="ip"}`, t0, 60, -inf),
			}
		}, 300, `ipacct_tag_bytes_created{direction="in", table_family="ip", tag="t"} at 2026-10-01T00:01:00.000Z: skipped created timestamp -Inf: not a time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, code, stderr := jsonReportOf(t, append(tc.streams(t), goodTag(t)))
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got, _ := bytesOfTag(r, "t"); got != tc.want {
				t.Errorf("t: %d bytes, want %d", got, tc.want)
			}
			if got, _ := bytesOfTag(r, "good"); got != 300 {
				t.Errorf("good: %d bytes, want 300", got)
			}
			if tc.warning == "" {
				if len(r.Warnings) > 0 || stderr != "" {
					t.Errorf("warnings %q, stderr %q; want none", r.Warnings, stderr)
				}
				return
			}
			if len(r.Warnings) != 1 || r.Warnings[0] != tc.warning {
				t.Errorf("warnings %q, want [%q]", r.Warnings, tc.warning)
			}
			if !strings.Contains(stderr, "ipacct_exporter report: warning: "+tc.warning) {
				t.Errorf("stderr %q lacks the warning", stderr)
			}
		})
	}
}

// one is a matrix of one series: pairs of seconds after t0 and values.
func one(metric string, pairs ...float64) func(t *testing.T) model.Matrix {
	return func(t *testing.T) model.Matrix { return model.Matrix{stream(t, metric, t0, pairs...)} }
}

func TestSeriesWithoutLabels(t *testing.T) {
	r, code, stderr := jsonReportOf(t, model.Matrix{
		goodTag(t),
		stream(t, `ipacct_tag_bytes_total{direction="in"}`, t0, 60, 1, 120, 2),
		stream(t, `ipacct_ip_bytes_total{tag="t",direction="in"}`, t0, 60, 1, 120, 2),
	})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(r.Tags) != 1 || r.Tags[0].Tag != "good" {
		t.Errorf("tags %+v, want good alone", r.Tags)
	}
	want := []string{
		`ipacct_tag_bytes_total{direction="in"}: skipped: no tag label`,
		`ipacct_ip_bytes_total{direction="in", tag="t"}: skipped: no ip label`,
	}
	for _, w := range want {
		found := false
		for _, got := range r.Warnings {
			found = found || got == w
		}
		if !found {
			t.Errorf("warnings %q lack %q", r.Warnings, w)
		}
	}
}

func TestManyWarningsAreBounded(t *testing.T) {
	var pairs []float64
	for i := range 200 {
		pairs = append(pairs, float64(10+i), -1)
	}
	r, code, stderr := jsonReportOf(t, model.Matrix{goodTag(t), stream(t, `ipacct_tag_bytes_total{tag="t",direction="in"}`, t0, pairs...)})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(r.Warnings) != maxWarnings+1 || r.Warnings[maxWarnings] != "150 more warnings not shown" {
		t.Errorf("%d warnings, the last %q; want %d and a count of the rest", len(r.Warnings), r.Warnings[len(r.Warnings)-1], maxWarnings+1)
	}
}

// TestTotalOverflow: increments that add up past what a 64-bit counter
// holds are no counters'; the report fails rather than print a wrapped
// number.
func TestTotalOverflow(t *testing.T) {
	big := float64(1 << 63)
	_, code, stderr := jsonReportOf(t, model.Matrix{
		stream(t, `ipacct_tag_bytes_total{tag="t",direction="in"}`, t0, 60, 0, 120, big, 180, 1, 240, big, 300, 1, 360, big),
	})
	if code != ExitFailed || !strings.Contains(stderr, "the total of tag t is 2^64 or more") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestEscapes: label values with a terminal escape sequence, a C1 control
// (CSI), a bidirectional override and a backslash reach no format raw.
func TestEscapes(t *testing.T) {
	tag := "\x1b[31mred\x1b[0m\u202eevil\\"
	ip := "192.0.2.1\u009b2J"
	series := model.Matrix{
		{Metric: model.Metric{"__name__": ipBytes, "tag": model.LabelValue(tag), "ip": model.LabelValue(ip), "direction": "in"},
			Values: stream(t, "x", t0, 60, 100, 120, 700).Values},
	}
	srv := httptest.NewServer(&fakeProm{series: series})
	defer srv.Close()
	raw := func(s string) bool {
		for _, r := range s {
			if r != '\n' && r != '\r' && r != '\t' && !unicode.IsPrint(r) {
				return true
			}
		}
		return false
	}
	for _, format := range Formats {
		c := command(srv.URL)
		c.Format = format
		c.Tags = []string{tag}
		if format == "email" {
			c.Mail = Mail{To: []string{"tenant@example.net"}, From: "billing@example.net"}
		}
		code, out, stderr := run(c)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", format, code, stderr)
		}
		if raw(out) || raw(stderr) {
			t.Errorf("%s: a control or format character went out raw:\n%q", format, out)
		}
		switch format {
		case "text", "csv":
			for _, want := range []string{`\x1b[31mred\x1b[0m\u202eevil\\`, `192.0.2.1\u009b2J`} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: no %s in\n%s", format, want, out)
				}
			}
		case "json":
			var r jsonReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Tags) != 1 || r.Tags[0].Tag != tag || r.Tags[0].Addresses[0].IP != ip || r.Tags[0].In.Bytes != 600 {
				t.Errorf("json: the labels do not decode to what they were: %+v", r.Tags)
			}
		case "email":
			if !strings.Contains(out, `Traffic of \x1b[31mred\x1b[0m\u202eevil\\`) {
				t.Errorf("email: the subject or page lacks the escaped tag:\n%s", out)
			}
		}
	}
}

// TestBadAnswers: answers that are not range vectors of the HTTP API fail
// the report with a message, and print nothing.
func TestBadAnswers(t *testing.T) {
	bigSeries := func(w http.ResponseWriter, n int) {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"ipacct_tag_bytes_total","tag":"t"},"values":[`)
		for i := range n {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `[%d.%03d,"%d"]`, t0.Unix()+1+int64(i)/1000, i%1000, i)
		}
		fmt.Fprint(w, `]}]}}`)
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		limit   int64
		stderr  string
	}{
		{"longer than the limit", func(w http.ResponseWriter, r *http.Request) { bigSeries(w, 200_000) }, 1 << 20,
			"the answer is longer than 1048576 bytes (--max-answer-size); a shorter --chunk asks for less per query"},
		{"HTML", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html><body>Login</body></html>")
		}, 0, `HTTP status 200: not an answer of the Prometheus HTTP API: "<html><body>Login</body></html>"`},
		{"cut short", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]`)
		}, 0, "decoding the answer: unexpected EOF"},
		{"an instant vector", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}, 0, `the answer is a "vector", not a range vector (matrix)`},
		{"a value that is no number", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"lots"]]}]}}`)
		}, 0, "decoding the answer"},
		{"two values", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}{"status":"success"}`)
		}, 0, "decoding the answer: more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := command(srv.URL)
			c.MaxAnswer = tc.limit
			code, out, stderr := run(c)
			if code != ExitFailed || !strings.Contains(stderr, tc.stderr) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, stderr, tc.stderr)
			}
		})
	}
}

// TestAnswerDecodedAsItArrives: the envelope's keys in any order, unknown
// keys skipped, warnings kept.
func TestAnswerDecodedAsItArrives(t *testing.T) {
	body := `{"data":{"result":[{"metric":{"__name__":"x","tag":"t"},"values":[[1.5,"7"],[2,"NaN"]]}],"extra":{"a":[1,{"b":2}]},"resultType":"matrix"},` +
		`"infos":["i"],"warnings":["w1"],"status":"success"}`
	a, err := decodeAnswer(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if a.status != "success" || a.resultType != "matrix" || len(a.warnings) != 1 || len(a.matrix) != 1 ||
		len(a.matrix[0].Values) != 2 || a.matrix[0].Values[0].Value != 7 || !math.IsNaN(float64(a.matrix[0].Values[1].Value)) {
		t.Errorf("decoded %+v", a)
	}
}

// BenchmarkDecodeAnswer decodes an hour of 1-second samples of 100 series,
// about 9 MB of JSON, as Client.Query does.
func BenchmarkDecodeAnswer(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for s := range 100 {
		if s > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"metric":{"__name__":"ipacct_ip_bytes_total","tag":"t","ip":"10.0.0.%d","direction":"in"},"values":[`, s)
		for i := range 3600 {
			if i > 0 {
				body.WriteString(",")
			}
			fmt.Fprintf(&body, `[%d.%03d,"%d"]`, 1796556000+i, i%1000, 1000000000+i*1500)
		}
		body.WriteString("]}")
	}
	body.WriteString("]}}")
	b.SetBytes(int64(body.Len()))
	for b.Loop() {
		if _, err := decodeAnswer(bytes.NewReader(body.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
