package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Formats are the output formats Write knows.
var Formats = []string{"text", "csv", "json"}

// Write writes r to w in format, one of Formats.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case "text":
		return WriteText(w, r)
	case "csv":
		return WriteCSV(w, r)
	case "json":
		return WriteJSON(w, r)
	}
	return fmt.Errorf("unknown format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// zoneName is the period's time zone for people: its name, unless that is
// "Local".
func zoneName(p Period) string {
	if name := p.From.Location().String(); name != "Local" {
		return " (" + name + ")"
	}
	return ""
}

// WriteText writes r for people and mail: aligned columns, SI units (1 GB is
// 10^9 bytes, 1 Mbit/s 10^6 bits per second).
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Traffic from %s%s\n", r.Period, zoneName(r.Period))
	for _, t := range r.Tags {
		fmt.Fprintln(bw)
		if t.Source == SourceTag {
			fmt.Fprintf(bw, "%s (totals of the tag's rules; no per-address counters)\n", t.Name)
		} else {
			fmt.Fprintln(bw, t.Name)
		}
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
		writeTable(bw, rows)
		if len(t.Addresses) == 0 {
			continue
		}
		fmt.Fprintln(bw)
		rows = [][]string{{"address", "in", "out", "total", "packets"}}
		for _, a := range t.Addresses {
			rows = append(rows, []string{a.IP, humanBytes(a.In.Bytes), humanBytes(a.Out.Bytes),
				humanBytes(a.TotalBytes()), humanCount(a.In.Packets + a.Out.Packets + a.None.Packets)})
		}
		writeTable(bw, rows)
	}
	fmt.Fprintf(bw, "\n95th percentile: per direction, the %s lowest of the period's %d five-minute rates (nearest rank).\n",
		ordinal(r.Rank), r.Buckets)
	for _, warning := range r.Warnings {
		fmt.Fprintf(bw, "Prometheus warned: %s\n", warning)
	}
	return bw.Flush()
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
var csvHeader = []string{"from", "to", "tag", "source", "ip",
	"in_bytes", "out_bytes", "none_bytes", "in_packets", "out_packets", "none_packets",
	"in_p95_bits_per_second", "out_p95_bits_per_second", "none_p95_bits_per_second"}

// WriteCSV writes r as CSV: a header, then per tag a line with an empty ip
// and its totals and percentiles, followed by a line per address, whose
// percentile columns are empty.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	from, to := r.Period.From.Format(time.RFC3339), r.Period.To.Format(time.RFC3339)
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, t := range r.Tags {
		if err := cw.Write([]string{from, to, t.Name, t.Source, "",
			u(t.In.Bytes), u(t.Out.Bytes), u(t.None.Bytes), u(t.In.Packets), u(t.Out.Packets), u(t.None.Packets),
			f(t.In.P95), f(t.Out.P95), f(t.None.P95)}); err != nil {
			return err
		}
		for _, a := range t.Addresses {
			if err := cw.Write([]string{from, to, t.Name, t.Source, a.IP,
				u(a.In.Bytes), u(a.Out.Bytes), u(a.None.Bytes), u(a.In.Packets), u(a.Out.Packets), u(a.None.Packets),
				"", "", ""}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

type jsonReport struct {
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
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
	Source    string        `json:"source"`
	In        jsonUsage     `json:"in"`
	Out       jsonUsage     `json:"out"`
	None      *jsonUsage    `json:"none,omitempty"`
	Addresses []jsonAddress `json:"addresses,omitempty"`
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
}

type jsonCounts struct {
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
}

// WriteJSON writes r as one JSON object. A "none" direction appears only
// when it has traffic; "addresses" only for tags reported from them.
func WriteJSON(w io.Writer, r *Report) error {
	out := jsonReport{
		From:     r.Period.From,
		To:       r.Period.To,
		TimeZone: r.Period.From.Location().String(),
		Percentile: jsonPercentile{Percentile: Percentile, BucketSeconds: int(BucketWidth / time.Second),
			Buckets: r.Buckets, Rank: r.Rank},
		Tags:     []jsonTag{},
		Warnings: r.Warnings,
	}
	for _, t := range r.Tags {
		jt := jsonTag{Tag: t.Name, Source: t.Source, In: jsonUsage(t.In), Out: jsonUsage(t.Out)}
		if t.None != (Usage{}) {
			n := jsonUsage(t.None)
			jt.None = &n
		}
		for _, a := range t.Addresses {
			ja := jsonAddress{IP: a.IP, In: jsonCounts(a.In), Out: jsonCounts(a.Out), TotalBytes: a.TotalBytes()}
			if a.None != (Counts{}) {
				n := jsonCounts(a.None)
				ja.None = &n
			}
			jt.Addresses = append(jt.Addresses, ja)
		}
		out.Tags = append(out.Tags, jt)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
