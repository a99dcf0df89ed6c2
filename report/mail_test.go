package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// mailed is a mailed report taken apart.
type mailed struct {
	header    mail.Header
	text      string
	html      string
	png       []byte
	contentID string
}

// parseMail takes a message apart as a mail client does: multipart/related
// holding a multipart/alternative (text/plain, text/html) and an image/png,
// which the HTML shows by cid:.
func parseMail(t *testing.T, message []byte) mailed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(message))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, message)
	}
	m := mailed{header: msg.Header}
	if v := msg.Header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	related := parts(t, msg.Header.Get("Content-Type"), msg.Body, "multipart/related")
	if len(related) != 2 {
		t.Fatalf("multipart/related of %d parts, want 2", len(related))
	}
	alternative := parts(t, related[0].Header.Get("Content-Type"), bytes.NewReader(related[0].body), "multipart/alternative")
	if len(alternative) != 2 {
		t.Fatalf("multipart/alternative of %d parts, want 2", len(alternative))
	}
	for i, want := range []string{"text/plain", "text/html"} {
		mt, params, _ := mime.ParseMediaType(alternative[i].Header.Get("Content-Type"))
		if mt != want || !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("alternative part %d: %s %v, want %s; charset=UTF-8", i, mt, params, want)
		}
	}
	m.text, m.html = string(alternative[0].body), string(alternative[1].body)
	img := related[1]
	if mt, _, _ := mime.ParseMediaType(img.Header.Get("Content-Type")); mt != "image/png" {
		t.Errorf("second related part is %s, want image/png", mt)
	}
	m.png, m.contentID = img.body, strings.Trim(img.Header.Get("Content-ID"), "<>")
	return m
}

type part struct {
	Header textproto.MIMEHeader
	body   []byte
}

// parts reads a multipart body of the media type want, decoding each part's
// transfer encoding.
func parts(t *testing.T, contentType string, body io.Reader, want string) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != want {
		t.Fatalf("content type %q, want %s: %v", contentType, want, err)
	}
	r := multipart.NewReader(body, params["boundary"])
	var out []part
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var rd io.Reader = p
		switch enc := strings.ToLower(p.Header.Get("Content-Transfer-Encoding")); enc {
		case "quoted-printable":
			rd = quotedprintable.NewReader(p)
		case "base64":
			rd = base64.NewDecoder(base64.StdEncoding, p) // skips the line breaks
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, part{Header: p.Header, body: b})
	}
}

// tableText returns the text of each cell of the table with id, row by row,
// without the digit group separators.
func tableText(t *testing.T, page, id string) [][]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var table *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "table" {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == id {
					table = n
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if table == nil {
		t.Fatalf("no table %s in\n%s", id, page)
	}
	var rows [][]string
	var text func(n *html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			b.WriteString(text(c))
		}
		return b.String()
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var row []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
					row = append(row, strings.ReplaceAll(text(c), groupSeparator, ""))
				}
			}
			rows = append(rows, row)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(table)
	return rows
}

// checkMail checks a mailed report of tag against the CSV of the same
// report: its structure, its picture, and the text of its tables.
func checkMail(t *testing.T, message []byte, csvText, tag string, percentile bool) mailed {
	t.Helper()
	m := parseMail(t, message)
	if !strings.Contains(m.html, `src="cid:`+m.contentID+`"`) || m.contentID == "" {
		t.Errorf("the HTML does not show the image by its Content-ID %q", m.contentID)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(m.png))
	if err != nil {
		t.Fatalf("the image is no PNG: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(m.png)); err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	wantHeight := 300
	if percentile {
		wantHeight = 600
	}
	if cfg.Width != 720 || cfg.Height != wantHeight || len(m.png) < 5_000 || len(m.png) > 250_000 {
		t.Errorf("PNG of %d×%d pixels, %d bytes; want 720×%d, 5 to 250 kB", cfg.Width, cfg.Height, len(m.png), wantHeight)
	}
	if len(message) > 500_000 {
		t.Errorf("a message of %d bytes", len(message))
	}
	rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// The CSV's lines of the tag: its totals, then its addresses, in order.
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	var tagRow []string
	var addrRows [][]string
	for _, row := range rows[1:] {
		switch {
		case row[col["tag"]] != tag:
		case row[col["ip"]] == "":
			tagRow = row
		default:
			addrRows = append(addrRows, row)
		}
	}
	totals := tableText(t, m.html, "totals")
	if got, want := strings.Join(totals[1][1:3], ","), tagRow[col["in_bytes"]]+","+tagRow[col["out_bytes"]]; got != want {
		t.Errorf("HTML total bytes %s, CSV %s", got, want)
	}
	if got, want := strings.Join(totals[3][1:3], ","), tagRow[col["in_packets"]]+","+tagRow[col["out_packets"]]; got != want {
		t.Errorf("HTML total packets %s, CSV %s", got, want)
	}
	addresses := tableText(t, m.html, "addresses")
	if len(addresses) != len(addrRows)+1 {
		t.Fatalf("HTML address table of %d rows, CSV %d addresses", len(addresses)-1, len(addrRows))
	}
	for i, row := range addrRows {
		want := []string{row[col["ip"]], row[col["in_bytes"]], row[col["out_bytes"]], row[col["in_packets"]], row[col["out_packets"]]}
		if got := addresses[i+1]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("HTML address row %v, CSV %v", got, want)
		}
	}
	return m
}

// TestWriteEmail mails the hand-worked report of t1 and takes it apart.
func TestWriteEmail(t *testing.T) {
	f := &fakeProm{series: handWorked(t)}
	o := handWorkedOptions()
	o.Tags, o.Step, o.Rates = []string{"t1"}, 20*time.Minute, true
	r, err := Build(context.Background(), f, o)
	if err != nil {
		t.Fatal(err)
	}
	var csvOut, message bytes.Buffer
	rNoSteps := *r
	rNoSteps.Steps = nil
	if err := WriteCSV(&csvOut, &rNoSteps); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 10, 2, 6, 0, 0, 0, time.UTC)
	err = WriteEmail(&message, r, Mail{To: []string{"a@example.net", "Tenant B <b@example.net>"}, From: "Billing <billing@example.net>", Percentile: true, Date: date})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(message.Bytes(), []byte("\r")) {
		t.Error("a CR in the message: sendmail's input ends lines in LF")
	}
	m := checkMail(t, message.Bytes(), csvOut.String(), "t1", true)
	for k, want := range map[string]string{
		"From":           `"Billing" <billing@example.net>`,
		"To":             `<a@example.net>, "Tenant B" <b@example.net>`,
		"Subject":        "Traffic of t1 from 2026-10-01 00:00 UTC to 2026-10-01 01:00 UTC",
		"Date":           "Fri, 02 Oct 2026 06:00:00 +0000",
		"Auto-Submitted": "auto-generated",
	} {
		if got := m.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if m.header.Get("Message-Id") == "" {
		t.Error("no Message-ID")
	}
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if m.text != text.String() {
		t.Errorf("text part:\n%s\nwant the text report:\n%s", m.text, text.String())
	}
	if dir := os.Getenv("IPACCT_REPORT_CHART_DIR"); dir != "" { // to look at it
		_ = os.WriteFile(dir+"/hand-worked.png", m.png, 0o644)
	}

	// Without --mail.percentile: one panel, no percentile in the page.
	message.Reset()
	if err := WriteEmail(&message, r, Mail{To: []string{"a@example.net"}, From: "billing@example.net", Date: date}); err != nil {
		t.Fatal(err)
	}
	m = checkMail(t, message.Bytes(), csvOut.String(), "t1", false)
	if strings.Contains(m.html, "95th") {
		t.Error("the page shows a percentile without --mail.percentile")
	}

	for _, bad := range []Mail{
		{To: []string{"not an address"}, From: "billing@example.net"},
		{To: []string{"a@example.net"}, From: "billing@"},
	} {
		if err := WriteEmail(io.Discard, r, bad); err == nil || !strings.Contains(err.Error(), "--mail.") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
