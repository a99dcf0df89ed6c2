package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Formats are the output formats of the command: those Write knows, and
// email (WriteEmail).
var Formats = []string{"text", "csv", "json", "email"}

// Write writes r to w in format: text, csv or json.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case "text":
		return WriteText(w, r)
	case "csv":
		return WriteCSV(w, r)
	case "json":
		return WriteJSON(w, r)
	}
	return fmt.Errorf("unknown format %q: want text, csv or json", format)
}

// zoneName is the period's time zone for people: its name, unless that is
// "Local".
func zoneName(p Period) string {
	if name := p.From.Location().String(); name != "Local" {
		return " (" + name + ")"
	}
	return ""
}

// timeLayout writes the times of a period for people.
const timeLayout = "2006-01-02 15:04 MST"

// formatEnd writes the end of what a report counts: with seconds when it is
// the time the report was made.
func formatEnd(r *Report) string {
	if r.Complete() {
		return r.End.Format(timeLayout)
	}
	return r.End.Format("2006-01-02 15:04:05 MST")
}

// headline is the first line of the text report, and a second one when the
// period had not ended.
func headline(r *Report) string {
	s := fmt.Sprintf("Traffic from %s to %s%s\n", r.Period.From.Format(timeLayout), formatEnd(r), zoneName(r.Period))
	if !r.Complete() {
		s += fmt.Sprintf("Incomplete: the period runs to %s; this counts up to the time of the report.\n", r.Period.To.Format(timeLayout))
	}
	return s
}

// percentileNote says over what the 95th percentiles were taken.
func percentileNote(r *Report) string {
	switch {
	case r.Buckets == 0:
		return "95th percentile: none yet, as no five-minute interval of the period has passed."
	case r.Complete():
		return fmt.Sprintf("95th percentile: per direction, the %s lowest of the period's %d five-minute rates (nearest rank).", ordinal(r.Rank), r.Buckets)
	}
	return fmt.Sprintf("95th percentile: per direction, the %s lowest of the %d five-minute rates that have passed (nearest rank).", ordinal(r.Rank), r.Buckets)
}

// WriteText writes r for people and mail: aligned columns, SI units (1 GB is
// 10^9 bytes, 1 Mbit/s 10^6 bits per second). Tags, addresses and warnings
// are written printable.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, headline(r))
	for _, t := range r.Tags {
		fmt.Fprintln(bw)
		if t.Metric == MetricTag {
			fmt.Fprintf(bw, "%s (totals of the tag's rules; no per-address counters)\n", printable(t.Name))
		} else {
			fmt.Fprintln(bw, printable(t.Name))
		}
		writeTable(bw, usageRows(t))
		if len(t.Addresses) == 0 {
			continue
		}
		fmt.Fprintln(bw)
		rows := [][]string{{"address", "in", "out", "total", "packets"}}
		for _, a := range t.Addresses {
			rows = append(rows, []string{printable(a.IP), humanBytes(a.In.Bytes), humanBytes(a.Out.Bytes),
				humanBytes(a.TotalBytes()), humanCount(a.In.Packets + a.Out.Packets + a.None.Packets)})
		}
		writeTable(bw, rows)
	}
	fmt.Fprintf(bw, "\n%s\n", percentileNote(r))
	for _, warning := range r.Warnings {
		fmt.Fprintf(bw, "Warning: %s\n", printable(warning))
	}
	return bw.Flush()
}

// usageRows are the rows of a tag's totals: a head, bytes, packets and the
// 95th percentile, in and out, and none when it has such traffic.
func usageRows(t Tag) [][]string {
	dirs := []*Usage{&t.In, &t.Out}
	head := []string{"", "in", "out"}
	if t.None.Bytes > 0 || t.None.Packets > 0 {
		dirs = append(dirs, &t.None)
		head = append(head, "none")
	}
	rows := [][]string{head, {"bytes"}, {"packets"}, {"95th percentile"}}
	for _, u := range dirs {
		rows[1] = append(rows[1], humanBytes(u.Bytes))
		rows[2] = append(rows[2], humanCount(u.Packets))
		rows[3] = append(rows[3], humanBits(u.P95))
	}
	return rows
}

// writeTable writes rows indented, the first column aligned left and the
// others right.
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(cell)))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("   " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// si writes v with an SI prefix and two decimals, or as a whole number below
// 1000.
func si(v float64, unit string) string {
	const prefixes = "kMGTPE"
	if v < 1000 {
		return strings.TrimSpace(fmt.Sprintf("%.0f %s", v, unit))
	}
	i := -1
	for v >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	return strings.TrimSpace(fmt.Sprintf("%.2f %c%s", v, prefixes[i], unit))
}

func humanBytes(n uint64) string   { return si(float64(n), "B") }
func humanCount(n uint64) string   { return si(float64(n), "") }
func humanBits(bps float64) string { return si(bps, "bit/s") }

// csvHeader is the first line of WriteCSV.
var csvHeader = []string{"from", "to", "tag", "metric", "ip",
	"in_bytes", "out_bytes", "none_bytes", "in_packets", "out_packets", "none_packets",
	"in_p95_bits_per_second", "out_p95_bits_per_second", "none_p95_bits_per_second", "complete"}

// WriteCSV writes r as CSV: a header, then per tag a line with an empty ip
// and its totals and percentiles, followed by a line per address, whose
// percentile columns are empty. "to" is where counting ended, and "complete"
// false when that is before the end of the period.
//
// With steps, the lines are those of each step instead, in time order, each
// with its step's from and to, without percentiles: the lines of a tag, or
// of an address, add up to its totals.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	line := func(from, to time.Time, t *Tag, ip string, c Traffic, p95 []string) error {
		return cw.Write(append([]string{from.Format(time.RFC3339), to.Format(time.RFC3339), printable(t.Name), t.Metric, printable(ip),
			u(c.In.Bytes), u(c.Out.Bytes), u(c.None.Bytes), u(c.In.Packets), u(c.Out.Packets), u(c.None.Packets)},
			append(p95, strconv.FormatBool(!to.Before(r.Period.To)))...))
	}
	noP95 := []string{"", "", ""}
	if r.Steps == nil {
		for i := range r.Tags {
			t := &r.Tags[i]
			if err := line(r.Period.From, r.End, t, "", t.Traffic(), []string{f(t.In.P95), f(t.Out.P95), f(t.None.P95)}); err != nil {
				return err
			}
			for _, a := range t.Addresses {
				if err := line(r.Period.From, r.End, t, a.IP, a.Traffic(), noP95); err != nil {
					return err
				}
			}
		}
	}
	for k := 0; k+1 < len(r.Steps); k++ {
		for i := range r.Tags {
			t := &r.Tags[i]
			if err := line(r.Steps[k], r.Steps[k+1], t, "", t.Steps[k], noP95); err != nil {
				return err
			}
			for _, a := range t.Addresses {
				if err := line(r.Steps[k], r.Steps[k+1], t, a.IP, a.Steps[k], noP95); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

type jsonReport struct {
	From time.Time `json:"from"`
	// To is where counting ended; PeriodTo the end of the period, later
	// when it had not ended.
	To         time.Time      `json:"to"`
	Complete   bool           `json:"complete"`
	PeriodTo   time.Time      `json:"period_to"`
	TimeZone   string         `json:"time_zone"`
	Percentile jsonPercentile `json:"percentile"`
	Tags       []jsonTag      `json:"tags"`
	Warnings   []string       `json:"warnings,omitempty"`
}

type jsonPercentile struct {
	Percentile    int `json:"percentile"`
	BucketSeconds int `json:"bucket_seconds"`
	Buckets       int `json:"buckets"`
	Rank          int `json:"rank"`
}

type jsonTag struct {
	Tag       string        `json:"tag"`
	Metric    string        `json:"metric"`
	In        jsonUsage     `json:"in"`
	Out       jsonUsage     `json:"out"`
	None      *jsonUsage    `json:"none,omitempty"`
	Addresses []jsonAddress `json:"addresses,omitempty"`
	Steps     []jsonStep    `json:"steps,omitempty"`
}

type jsonUsage struct {
	Bytes   uint64  `json:"bytes"`
	Packets uint64  `json:"packets"`
	P95     float64 `json:"p95_bits_per_second"`
}

type jsonAddress struct {
	IP         string      `json:"ip"`
	In         jsonCounts  `json:"in"`
	Out        jsonCounts  `json:"out"`
	None       *jsonCounts `json:"none,omitempty"`
	TotalBytes uint64      `json:"total_bytes"`
	Steps      []jsonStep  `json:"steps,omitempty"`
}

type jsonCounts struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
}

type jsonStep struct {
	From time.Time   `json:"from"`
	To   time.Time   `json:"to"`
	In   jsonCounts  `json:"in"`
	Out  jsonCounts  `json:"out"`
	None *jsonCounts `json:"none,omitempty"`
}

// jsonNone is the "none" direction, when it has traffic.
func jsonNone(c Counts) *jsonCounts {
	if c == (Counts{}) {
		return nil
	}
	n := jsonCounts(c)
	return &n
}

func jsonSteps(r *Report, steps []Traffic) []jsonStep {
	var out []jsonStep
	for k, c := range steps {
		out = append(out, jsonStep{From: r.Steps[k], To: r.Steps[k+1], In: jsonCounts(c.In), Out: jsonCounts(c.Out), None: jsonNone(c.None)})
	}
	return out
}

// WriteJSON writes r as one JSON object. A "none" direction appears only
// when it has traffic; "addresses" only for tags reported from them; "steps"
// with steps. Strings that are not printable are \u escaped.
func WriteJSON(w io.Writer, r *Report) error {
	out := jsonReport{
		From:     r.Period.From,
		To:       r.End,
		Complete: r.Complete(),
		PeriodTo: r.Period.To,
		TimeZone: r.Period.From.Location().String(),
		Percentile: jsonPercentile{Percentile: Percentile, BucketSeconds: int(BucketWidth / time.Second),
			Buckets: r.Buckets, Rank: r.Rank},
		Tags:     []jsonTag{},
		Warnings: r.Warnings,
	}
	for _, t := range r.Tags {
		jt := jsonTag{Tag: t.Name, Metric: t.Metric, In: jsonUsage(t.In), Out: jsonUsage(t.Out), Steps: jsonSteps(r, t.Steps)}
		if t.None != (Usage{}) {
			n := jsonUsage(t.None)
			jt.None = &n
		}
		for _, a := range t.Addresses {
			jt.Addresses = append(jt.Addresses, jsonAddress{IP: a.IP, In: jsonCounts(a.In), Out: jsonCounts(a.Out),
				None: jsonNone(a.None), TotalBytes: a.TotalBytes(), Steps: jsonSteps(r, a.Steps)})
		}
		out.Tags = append(out.Tags, jt)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := w.Write(escapeJSON(b.Bytes()))
	return err
}
