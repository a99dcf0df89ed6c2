package report

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Mail says who a mailed report goes to, and how it looks.
type Mail struct {
	To      []string
	From    string
	Subject string // "": made from the tag and the period
	// Percentile adds the 5-minute rates and their 95th percentiles to the
	// chart, for tenants billed by it.
	Percentile bool
	// Date is the message's date; zero: now.
	Date time.Time
}

// chartName is the file name, and Content-ID, of the chart in a mailed report.
const chartName = "traffic.png"

// WriteEmail writes r, the report of one tag made with a step of a day and
// with rates, as a complete mail message for sendmail -t: headers, a text
// part (WriteText) and an HTML part with the chart as a PNG beside it in a
// multipart/related, which the HTML shows by cid:. Lines end in LF, as
// sendmail's input does.
func WriteEmail(w io.Writer, r *Report, m Mail) error {
	if len(r.Tags) != 1 {
		return fmt.Errorf("a mailed report is of one tag, not %d", len(r.Tags))
	}
	t := &r.Tags[0]
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("--mail.from %q: %w", m.From, err)
	}
	if len(m.To) == 0 {
		return errors.New("no --mail.to")
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("--mail.to %q: %w", strings.Join(m.To, ", "), err)
	}
	subject := m.Subject
	if subject == "" {
		subject = defaultSubject(r, t)
	}
	msg.Subject(subject)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.SetMessageID()
	msg.SetGenHeader(mail.HeaderUserAgent, "ipacct_exporter report")
	msg.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies

	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		return err
	}
	msg.SetBodyString(mail.TypeTextPlain, text.String())
	var page bytes.Buffer
	if err := mailPage.Execute(&page, newMailView(r, t, m.Percentile)); err != nil {
		return err
	}
	msg.AddAlternativeString(mail.TypeTextHTML, page.String())
	png, err := Chart(r, t, m.Percentile)
	if err != nil {
		return err
	}
	if err := msg.EmbedReader(chartName, bytes.NewReader(png), mail.WithFileContentType("image/png")); err != nil {
		return err
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		return err
	}
	_, err = w.Write(bytes.ReplaceAll(b.Bytes(), []byte("\r\n"), []byte("\n")))
	return err
}

// defaultSubject is "Traffic of TAG in October 2026" for a calendar month,
// "Traffic of TAG from … to …" for any other period, and says "so far" for a
// period that had not ended.
func defaultSubject(r *Report, t *Tag) string {
	p := r.Period
	s := "Traffic of " + printable(t.Name)
	if p.From.Day() == 1 && p.From.Equal(time.Date(p.From.Year(), p.From.Month(), 1, 0, 0, 0, 0, p.From.Location())) && p.To.Equal(p.From.AddDate(0, 1, 0)) {
		s += " in " + p.From.Format("January 2006")
	} else {
		s += " from " + p.From.Format(timeLayout) + " to " + p.To.Format(timeLayout)
	}
	if !r.Complete() {
		s += " (so far)"
	}
	return s
}

// mailView is what the HTML of a mailed report shows.
type mailView struct {
	Tag, Period, Incomplete string
	Totals                  [][]string   // a head row, then rows of a label and a value per direction
	Addresses               [][]string   // a head row, then one per address
	Chart                   template.URL // cid:, which html/template would not trust
	ChartAlt                string
	Notes                   []string
}

func newMailView(r *Report, t *Tag, withPercentile bool) mailView {
	v := mailView{
		Tag:    printable(t.Name),
		Period: fmt.Sprintf("%s to %s%s", r.Period.From.Format(timeLayout), formatEnd(r), zoneName(r.Period)),
		Chart:  template.URL("cid:" + chartName),
	}
	v.ChartAlt = "Chart: traffic per day, in and out"
	if withPercentile {
		v.ChartAlt += ", and the 5-minute rates with their 95th percentiles"
	}
	if !r.Complete() {
		v.Incomplete = fmt.Sprintf("Incomplete: the period runs to %s; this counts up to the time of the report.", r.Period.To.Format(timeLayout))
	}
	hasNone := t.None != (Usage{})
	v.Totals = [][]string{{"", "in", "out"}, {"bytes"}, {"volume"}, {"packets"}}
	if withPercentile {
		v.Totals = append(v.Totals, []string{"95th percentile"})
	}
	dirs := []Usage{t.In, t.Out}
	if hasNone {
		v.Totals[0] = append(v.Totals[0], "none")
		dirs = append(dirs, t.None)
	}
	for _, u := range dirs {
		v.Totals[1] = append(v.Totals[1], grouped(u.Bytes))
		v.Totals[2] = append(v.Totals[2], humanBytes(u.Bytes))
		v.Totals[3] = append(v.Totals[3], grouped(u.Packets))
		if withPercentile {
			v.Totals[4] = append(v.Totals[4], humanBits(u.P95))
		}
	}
	if t.Metric == MetricAddresses {
		head := []string{"address", "in bytes", "out bytes", "in packets", "out packets"}
		if hasNone {
			head = append(head, "none bytes", "none packets")
		}
		v.Addresses = [][]string{head}
		for _, a := range t.Addresses {
			row := []string{printable(a.IP), grouped(a.In.Bytes), grouped(a.Out.Bytes), grouped(a.In.Packets), grouped(a.Out.Packets)}
			if hasNone {
				row = append(row, grouped(a.None.Bytes), grouped(a.None.Packets))
			}
			v.Addresses = append(v.Addresses, row)
		}
	} else {
		v.Notes = append(v.Notes, "Totals of the tag's rules: it has no per-address counters.")
	}
	if withPercentile {
		v.Notes = append(v.Notes, percentileNote(r))
	}
	for _, w := range r.Warnings {
		v.Notes = append(v.Notes, "Warning: "+printable(w))
	}
	return v
}

// groupSeparator is a narrow no-break space, the SI's thousands separator,
// which no locale reads as a decimal point.
const groupSeparator = "\u202f"

// grouped writes n with its digits in groups of three.
func grouped(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(groupSeparator)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// mailPage is the HTML part: inline styles and tables only, which mail
// clients keep.
var mailPage = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>Traffic of {{.Tag}}</title>
</head>
<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222222;background:#ffffff">
<h1 style="font-size:20px;margin:0 0 4px 0">Traffic of {{.Tag}}</h1>
<p style="margin:0 0 12px 0;color:#555555">{{.Period}}</p>
{{- if .Incomplete}}
<p style="margin:0 0 12px 0;padding:8px;background:#fff4ce;border:1px solid #e0c060"><strong>{{.Incomplete}}</strong></p>
{{- end}}
<table id="totals" cellpadding="6" cellspacing="0" style="border-collapse:collapse;margin:0 0 16px 0">
{{- range $i, $row := .Totals}}
<tr>{{range $j, $cell := $row}}{{if or (eq $i 0) (eq $j 0)}}<th style="text-align:{{if eq $j 0}}left{{else}}right{{end}};border-bottom:1px solid #cccccc">{{$cell}}</th>{{else}}<td style="text-align:right;border-bottom:1px solid #eeeeee">{{$cell}}</td>{{end}}{{end}}</tr>
{{- end}}
</table>
<img src="{{.Chart}}" alt="{{.ChartAlt}}" width="720" style="display:block;max-width:100%;height:auto;border:0;margin:0 0 16px 0">
{{- if .Addresses}}
<h2 style="font-size:16px;margin:0 0 8px 0">Addresses</h2>
<table id="addresses" cellpadding="6" cellspacing="0" style="border-collapse:collapse;margin:0 0 16px 0">
{{- range $i, $row := .Addresses}}
<tr>{{range $j, $cell := $row}}{{if eq $i 0}}<th style="text-align:{{if eq $j 0}}left{{else}}right{{end}};border-bottom:1px solid #cccccc">{{$cell}}</th>{{else}}<td style="text-align:{{if eq $j 0}}left{{else}}right{{end}};border-bottom:1px solid #eeeeee;font-family:Consolas,Menlo,monospace">{{$cell}}</td>{{end}}{{end}}</tr>
{{- end}}
</table>
{{- end}}
{{- range .Notes}}
<p style="margin:0 0 6px 0;color:#555555;font-size:12px">{{.}}</p>
{{- end}}
</body>
</html>
`))
