package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// TestPrometheus loads a month of samples with known increments into a real
// Prometheus, with promtool, and checks the report against them: the totals
// exactly, the 95th percentile against one worked out another way.
func TestPrometheus(t *testing.T) {
	for _, tool := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			netnstest.Skip(t, "needs %s (Debian package prometheus): %v", tool, err)
		}
	}
	month := testMonth(t)
	if now := time.Now(); now.Before(month.To.Add(48 * time.Hour)) {
		t.Fatalf("the machine's clock says %s: the test month, %s, must be over for the command to report it", now, month)
	}
	series := monthData(t)
	want := monthTruth(series, month)
	url := startPrometheus(t, series)
	client, err := NewClient(url, "")
	if err != nil {
		t.Fatal(err)
	}
	options := Options{Period: month, MaxGap: testMaxGap, Chunk: time.Hour}

	var whole *Report
	t.Run("month", func(t *testing.T) {
		start := time.Now()
		r, err := Build(context.Background(), client, options)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("report of %s built in %s", month, time.Since(start))
		if r.Buckets != 8940 || r.Rank != 8493 {
			t.Errorf("%d buckets, rank %d; want 8940 (745 hours), 8493", r.Buckets, r.Rank)
		}
		checkReport(t, r, want)
		whole = r
	})

	t.Run("halves add up", func(t *testing.T) {
		if whole == nil {
			t.Skip("no whole month")
		}
		// A split at an odd time, and on the hour the clock goes back.
		for _, split := range []time.Time{
			time.Date(2026, 10, 17, 13, 7, 11, 0, time.UTC),
			time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC),
		} {
			first, second := options, options
			first.Period.To, second.Period.From = split, split
			sums := map[string]uint64{}
			for _, o := range []Options{first, second} {
				r, err := Build(context.Background(), client, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, tag := range r.Tags {
					sums[tag.Name+" in"] += tag.In.Bytes
					sums[tag.Name+" out"] += tag.Out.Bytes
					sums[tag.Name+" none packets"] += tag.None.Packets
				}
			}
			for _, tag := range whole.Tags {
				for k, v := range map[string]uint64{" in": tag.In.Bytes, " out": tag.Out.Bytes, " none packets": tag.None.Packets} {
					if sums[tag.Name+k] != v {
						t.Errorf("split at %s: %s%s adds up to %d, the month has %d", split, tag.Name, k, sums[tag.Name+k], v)
					}
				}
			}
		}
	})

	t.Run("tag filter and a longer chunk", func(t *testing.T) {
		o := options
		o.Tags, o.Chunk = []string{"beta", "ssh"}, 13*time.Hour
		r, err := Build(context.Background(), client, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Tags) != 2 || r.Tags[0].Name != "beta" || r.Tags[1].Name != "ssh" {
			t.Fatalf("tags %v", r.Tags)
		}
		checkReport(t, r, map[string]*truth{"beta": want["beta"], "ssh": want["ssh"]})
	})

	t.Run("empty period", func(t *testing.T) {
		o := options
		o.Period = Period{From: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := Build(context.Background(), client, o); !errors.Is(err, ErrNoData) {
			t.Errorf("June: %v, want ErrNoData", err)
		}
		o = options
		o.Tags = []string{"old", "late"}
		if _, err := Build(context.Background(), client, o); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "tag old, late") {
			t.Errorf("tags without samples in the month: %v", err)
		}
	})

	t.Run("steps add up", func(t *testing.T) {
		checkSteps(t, url, want)
	})

	t.Run("email", func(t *testing.T) {
		checkEmail(t, url)
	})

	t.Run("binary", func(t *testing.T) {
		bin := exetest.Binary(t)
		period := []string{"report", "--prometheus.url=" + url, "--period=2026-10", "--timezone=Europe/Berlin"}

		out, errOut, code := runBinary(t, bin, append(period, "--format=json")...)
		if code != 0 {
			t.Fatalf("json: exit %d: %s", code, errOut)
		}
		checkJSON(t, out, want)

		out, errOut, code = runBinary(t, bin, append(period, "--format=csv")...)
		if code != 0 {
			t.Fatalf("csv: exit %d: %s", code, errOut)
		}
		checkCSV(t, out, want)

		out, errOut, code = runBinary(t, bin, append(period, "--tag=acme")...)
		if code != 0 {
			t.Fatalf("text: exit %d: %s", code, errOut)
		}
		for _, s := range []string{
			"Traffic from 2026-10-01 00:00 CEST to 2026-11-01 00:00 CET (Europe/Berlin)\n\nacme\n",
			"\n  address ", "\n  192.0.2.1 ", "\n  2001:db8::1 ", "\n  192.0.2.2 ", "\n  192.0.2.3 ",
			"the 8493rd lowest of the period's 8940 five-minute rates",
		} {
			if !strings.Contains(out, s) {
				t.Errorf("text output lacks %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "beta") {
			t.Errorf("--tag=acme shows beta:\n%s", out)
		}

		for _, tc := range []struct {
			name   string
			args   []string
			code   int
			stderr string
		}{
			{"unreachable", []string{"report", "--prometheus.url=" + closedURL(t), "--period=2026-10"}, 1, "cannot reach Prometheus at http://127.0.0.1:"},
			{"bad period", []string{"report", "--prometheus.url=" + url, "--period=2026-13"}, 2, `invalid --period "2026-13"`},
			{"empty period", []string{"report", "--prometheus.url=" + url, "--period=2026-06", "--timezone=UTC"}, 1,
				"no data: no ipacct_ip_* or ipacct_tag_* samples from 2026-06-01 00:00 UTC to 2026-07-01 00:00 UTC in Prometheus at " + url},
			{"unknown tag", append(period, "--tag=nope"), 1, "no data for tag nope from"},
			{"bad format", append(period, "--format=xml"), 2, "enum value must be one of text,csv,json,email"},
			{"step with text", append(period, "--step=1d"), 2, "--step gives rows per step in --format=csv or json"},
			{"bad step", append(period, "--format=csv", "--step=7m"), 2, "--step: invalid step 7m"},
			{"email of all tags", append(period, "--format=email", "--mail.to=a@example.net", "--mail.from=b@example.net"), 2, "--format=email reports one tenant: give --tag once"},
			{"email without a recipient", append(period, "--format=email", "--tag=acme", "--mail.from=b@example.net"), 2, "--format=email needs --mail.to and --mail.from"},
			{"mail flags without email", append(period, "--mail.to=a@example.net"), 2, "--mail.* flags go with --format=email"},
			{"from in the future", []string{"report", "--prometheus.url=" + url, "--from=2099-01-01", "--to=2099-02-01"}, 2, "has not begun"},
		} {
			out, errOut, code := runBinary(t, bin, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) || out != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.name, code, out, errOut, tc.code, tc.stderr)
			}
		}
	})
}

// checkReport compares a report with the truth: the tags, their sources,
// every total exactly, the percentiles to 1e-9.
func checkReport(t *testing.T, r *Report, want map[string]*truth) {
	t.Helper()
	var names []string
	for _, tag := range r.Tags {
		names = append(names, tag.Name)
	}
	var wantNames []string
	for name := range want {
		wantNames = append(wantNames, name)
	}
	sort.Strings(wantNames)
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("tags %v, want %v", names, wantNames)
	}
	for _, tag := range r.Tags {
		w := want[tag.Name]
		if tag.Metric != w.metric {
			t.Errorf("%s: from %s, want %s", tag.Name, tag.Metric, w.metric)
		}
		for dir, u := range map[string]Usage{"in": tag.In, "out": tag.Out, "none": tag.None} {
			if u.Bytes != w.bytes[dir] || u.Packets != w.packets[dir] {
				t.Errorf("%s %s: %d bytes, %d packets; want %d, %d", tag.Name, dir, u.Bytes, u.Packets, w.bytes[dir], w.packets[dir])
			}
			if !near(u.P95, w.p95[dir]) {
				t.Errorf("%s %s: 95th percentile %v bit/s, want %v", tag.Name, dir, u.P95, w.p95[dir])
			}
		}
		if len(tag.Addresses) != len(w.addresses) {
			t.Errorf("%s: %d addresses, want %d", tag.Name, len(tag.Addresses), len(w.addresses))
		}
		for i, a := range tag.Addresses {
			wa := w.addresses[a.IP]
			got := map[string]uint64{"in bytes": a.In.Bytes, "out bytes": a.Out.Bytes, "in packets": a.In.Packets, "out packets": a.Out.Packets}
			for k, v := range got {
				if v != wa[k] {
					t.Errorf("%s %s %s: %d, want %d", tag.Name, a.IP, k, v, wa[k])
				}
			}
			if i > 0 && tag.Addresses[i-1].TotalBytes() < a.TotalBytes() {
				t.Errorf("%s: %s before %s, which has more bytes", tag.Name, tag.Addresses[i-1].IP, a.IP)
			}
		}
	}
	// The month's data has what it is meant to test.
	if acme := want["acme"]; acme != nil && (len(acme.addresses) != 4 || acme.bytes["in"] == 0) {
		t.Errorf("acme's truth: %+v", acme)
	}
}

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(math.Abs(want), 1)
}

func checkJSON(t *testing.T, out string, want map[string]*truth) {
	t.Helper()
	var r struct {
		Tags []struct {
			Tag       string
			Metric    string
			In, Out   jsonUsage
			None      *jsonUsage
			Addresses []struct {
				IP      string
				In, Out jsonCounts
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	rep := &Report{}
	for _, jt := range r.Tags {
		tag := Tag{Name: jt.Tag, Metric: jt.Metric,
			In:  Usage{Bytes: jt.In.Bytes, Packets: jt.In.Packets, P95: jt.In.P95},
			Out: Usage{Bytes: jt.Out.Bytes, Packets: jt.Out.Packets, P95: jt.Out.P95}}
		if jt.None != nil {
			tag.None = Usage{Bytes: jt.None.Bytes, Packets: jt.None.Packets, P95: jt.None.P95}
		}
		for _, a := range jt.Addresses {
			tag.Addresses = append(tag.Addresses, Address{IP: a.IP, In: Counts(a.In), Out: Counts(a.Out)})
		}
		rep.Tags = append(rep.Tags, tag)
	}
	checkReport(t, rep, want)
}

func checkCSV(t *testing.T, out string, want map[string]*truth) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, w := range want {
		n += 1 + len(w.addresses)
	}
	if len(rows) != n || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), n, out)
	}
	for _, row := range rows[1:] {
		w := want[row[2]]
		if row[0] != "2026-10-01T00:00:00+02:00" || row[1] != "2026-11-01T00:00:00+01:00" || w == nil {
			t.Errorf("row %v", row)
			continue
		}
		var got, exp string
		if row[4] == "" {
			got = strings.Join(row[5:10], ",")
			exp = fmt.Sprintf("%d,%d,%d,%d,%d", w.bytes["in"], w.bytes["out"], w.bytes["none"], w.packets["in"], w.packets["out"])
		} else {
			a := w.addresses[row[4]]
			got = strings.Join(row[5:7], ",") + "," + strings.Join(row[8:10], ",")
			exp = fmt.Sprintf("%d,%d,%d,%d", a["in bytes"], a["out bytes"], a["in packets"], a["out packets"])
		}
		if got != exp {
			t.Errorf("%s %s: %s, want %s", row[2], row[4], got, exp)
		}
	}
}

// startPrometheus writes the series as OpenMetrics, turns them into TSDB
// blocks with promtool, and starts Prometheus on them on a free loopback
// port, stopped when the test ends. It returns Prometheus' URL.
func startPrometheus(t *testing.T, series []*genSeries) string {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	start := time.Now()
	var names []string
	for day, text := range openMetricsByDay(series) {
		name := filepath.Join(dir, day+".om")
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	// Eight at a time: each writes its twelve blocks, and waits mostly for
	// the disk to sync them.
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				out, err := exec.Command("promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", name, data).CombinedOutput()
				if err != nil {
					errs <- fmt.Errorf("promtool tsdb create-blocks-from openmetrics %s: %v: %s", name, err, out)
				}
			}
		}()
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("promtool: %d days of samples in %s", len(names), time.Since(start))

	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := exetest.FreeAddr(t)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("prometheus",
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=100y",
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus exited: %v\n%s", err, b)
		default:
		}
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after a minute: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("prometheus ready at %s after %s", url, time.Since(start))
	return url
}

func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestMain removes the exporter that the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	exetest.RemoveBinary()
	os.Exit(code)
}

// checkSteps checks --step=1d in CSV and --step=1h in JSON: a row per step,
// tag and address, the calendar days of Berlin (the 25th has 25 hours), and
// the rows of each tag and address adding up to the month's truth.
func checkSteps(t *testing.T, url string, want map[string]*truth) {
	bin := exetest.Binary(t)
	period := []string{"report", "--prometheus.url=" + url, "--period=2026-10", "--timezone=Europe/Berlin"}
	out, errOut, code := runBinary(t, bin, append(period, "--format=csv", "--step=1d")...)
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string][4]uint64{} // tag ip → in, out bytes, in, out packets
	days := map[string]bool{}
	lines := 0
	for _, row := range rows[1:] {
		lines++
		days[row[0]+" "+row[1]] = true
		k := row[2] + " " + row[4]
		s := sums[k]
		for i, c := range []int{5, 6, 8, 9} {
			var v uint64
			fmt.Sscan(row[c], &v)
			s[i] += v
		}
		sums[k] = s
	}
	if len(days) != 31 || !days["2026-10-25T00:00:00+02:00 2026-10-26T00:00:00+01:00"] {
		t.Errorf("%d days, or no 25-hour 25th: %v", len(days), days)
	}
	n := 0
	for tag, w := range want {
		n += 1 + len(w.addresses)
		if got := sums[tag+" "]; got != [4]uint64{w.bytes["in"], w.bytes["out"], w.packets["in"], w.packets["out"]} {
			t.Errorf("%s: the days add up to %v; the month is %d %d %d %d", tag, got, w.bytes["in"], w.bytes["out"], w.packets["in"], w.packets["out"])
		}
		for ip, a := range w.addresses {
			if got := sums[tag+" "+ip]; got != [4]uint64{a["in bytes"], a["out bytes"], a["in packets"], a["out packets"]} {
				t.Errorf("%s %s: the days add up to %v; the month is %v", tag, ip, got, a)
			}
		}
	}
	if lines != 31*n {
		t.Errorf("%d lines, want 31 days × %d tags and addresses", lines, n)
	}

	out, errOut, code = runBinary(t, bin, append(period, "--format=json", "--step=1h", "--tag=acme")...)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	acme := r.Tags[0]
	var in, out2 uint64
	for _, s := range acme.Steps {
		in += s.In.Bytes
		out2 += s.Out.Bytes
	}
	if len(acme.Steps) != 745 || in != acme.In.Bytes || out2 != acme.Out.Bytes {
		t.Errorf("acme: %d hours adding up to %d in, %d out; the month is %d, %d", len(acme.Steps), in, out2, acme.In.Bytes, acme.Out.Bytes)
	}
	for _, a := range acme.Addresses {
		var sum uint64
		for _, s := range a.Steps {
			sum += s.In.Bytes + s.Out.Bytes
		}
		if len(a.Steps) != 745 || sum != a.TotalBytes {
			t.Errorf("acme %s: %d hours adding up to %d bytes; the month is %d", a.IP, len(a.Steps), sum, a.TotalBytes)
		}
	}
}

// checkEmail makes acme's mail with the binary, takes it apart and compares
// its tables with the CSV; then sends it with a real sendmail -t (msmtp) to
// a real SMTP server (aiosmtpd) on 127.0.0.1 and takes the delivered
// message apart too.
func checkEmail(t *testing.T, url string) {
	bin := exetest.Binary(t)
	period := []string{"report", "--prometheus.url=" + url, "--period=2026-10", "--timezone=Europe/Berlin", "--tag=acme"}
	csvOut, errOut, code := runBinary(t, bin, append(period, "--format=csv")...)
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	message, errOut, code := runBinary(t, bin, append(period, "--format=email", "--mail.percentile",
		"--mail.to=billing@tenant31.example", "--mail.to=ops@tenant31.example", "--mail.from=Traffic reports <noc@example.net>")...)
	if code != 0 {
		t.Fatalf("email: exit %d: %s", code, errOut)
	}
	m := checkMail(t, []byte(message), csvOut, "acme", true)
	if got := m.header.Get("Subject"); got != "Traffic of acme in October 2026" {
		t.Errorf("subject %q", got)
	}
	if dir := os.Getenv("IPACCT_REPORT_CHART_DIR"); dir != "" { // to look at it
		_ = os.WriteFile(filepath.Join(dir, "acme-2026-10.png"), m.png, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "acme-2026-10.eml"), []byte(message), 0o644)
	}

	// sendmail -t: the recipients from the headers.
	for _, tool := range []string{"msmtp", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			netnstest.Skip(t, "needs %s (Debian packages msmtp, python3-aiosmtpd): %v", tool, err)
		}
	}
	maildir := t.TempDir()
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(maildir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	smtpAddr := exetest.FreeAddr(t)
	host, port, _ := net.SplitHostPort(smtpAddr)
	smtpd := exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", smtpAddr, "-c", "aiosmtpd.handlers.Mailbox", maildir)
	exetest.Run(t, "aiosmtpd", smtpd)
	waitUntil(t, "aiosmtpd listens", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", smtpAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	send := exec.Command("msmtp", "--host="+host, "--port="+port, "--auth=off", "--tls=off", "--from=noc@example.net", "-t")
	send.Stdin = strings.NewReader(message)
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("msmtp -t: %v: %s", err, out)
	}
	var delivered []byte
	waitUntil(t, "the message is in the mailbox", 30*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		if len(files) != 1 {
			return false
		}
		delivered, _ = os.ReadFile(files[0])
		return len(delivered) > 0
	})
	d := checkMail(t, delivered, csvOut, "acme", true)
	if d.html != m.html || !bytes.Equal(d.png, m.png) || d.text != m.text {
		t.Error("the delivered message differs from the one written")
	}
	for _, h := range []string{"To", "From", "Subject", "Message-Id"} {
		if d.header.Get(h) != m.header.Get(h) {
			t.Errorf("%s: delivered %q, written %q", h, d.header.Get(h), m.header.Get(h))
		}
	}
}
