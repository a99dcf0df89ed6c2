package report

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// command is a Command for the hand-worked series' period.
func command(url string) Command {
	return Command{
		URL:      url,
		From:     t0.Format(time.RFC3339),
		To:       t0.Add(time.Hour).Format(time.RFC3339),
		TimeZone: "UTC",
		Format:   "csv",
		Timeout:  10 * time.Second,
		MaxGap:   40 * time.Minute,
		Chunk:    20 * time.Minute,
		Now:      t0.Add(48 * time.Hour),
	}
}

func run(c Command) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = c.Run(context.Background(), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedURL is the URL of a port on loopback that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestCommandOverHTTP(t *testing.T) {
	srv := httptest.NewServer(&fakeProm{series: handWorked(t)})
	defer srv.Close()
	code, out, errOut := run(command(srv.URL))
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, ",t1,ipacct_ip,,1265,100,0,12,0,0,") {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestCommandTLSAndBasicAuth checks that --http.config.file reaches the
// connection: the server's CA and a password file.
func TestCommandTLSAndBasicAuth(t *testing.T) {
	fake := &fakeProm{series: handWorked(t)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "report" || pass != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="prometheus"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the client refuses
	srv.StartTLS()
	defer srv.Close()
	ca := writeTestFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	password := writeTestFile(t, "password", "s3cret\n")
	good := writeTestFile(t, "http.yml", "basic_auth:\n  username: report\n  password_file: "+password+"\ntls_config:\n  ca_file: "+ca+"\n")
	wrongPassword := writeTestFile(t, "wrong.yml", "basic_auth:\n  username: report\n  password: nope\ntls_config:\n  ca_file: "+ca+"\n")
	insecure := writeTestFile(t, "insecure.yml", "basic_auth:\n  username: report\n  password_file: "+password+"\ntls_config:\n  insecure_skip_verify: true\n")

	for _, tc := range []struct {
		name, file string
		code       int
		stderr     string
	}{
		{"CA and password file", good, ExitOK, ""},
		{"insecure_skip_verify", insecure, ExitOK, ""},
		{"no configuration: unknown CA", "", ExitFailed, "cannot reach Prometheus at https://127.0.0.1:"},
		{"wrong password", wrongPassword, ExitFailed, `Z: HTTP status 401: not an answer of the Prometheus HTTP API: "Unauthorized"`},
		{"missing file", filepath.Join(t.TempDir(), "none.yml"), ExitUsage, "HTTP client configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := command(srv.URL)
			c.HTTPConfigFile = tc.file
			code, out, errOut := run(c)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr with %q", code, errOut, tc.code, tc.stderr)
			}
			if code == ExitOK && !strings.Contains(out, ",t1,ipacct_ip,,1265,") {
				t.Errorf("stdout:\n%s", out)
			}
			if code != ExitOK && out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	fake := httptest.NewServer(&fakeProm{series: handWorked(t)})
	defer fake.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}`))
	}))
	defer failing.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer slow.Close()
	defer close(release) // before Close, which waits for the handler

	for _, tc := range []struct {
		name   string
		change func(*Command)
		code   int
		stderr string
	}{
		{"unreachable", func(c *Command) { c.URL = closedURL(t) }, ExitFailed, "cannot reach Prometheus at http://127.0.0.1:"},
		{"query fails", func(c *Command) { c.URL = failing.URL }, ExitFailed, "failed a query: query {__name__=~"},
		{"query fails", func(c *Command) { c.URL = failing.URL }, ExitFailed, "Z: execution (HTTP status 422): query processing would load too many samples"},
		{"timeout", func(c *Command) { c.URL, c.Timeout = slow.URL, 200*time.Millisecond }, ExitFailed, "no complete answer from Prometheus at " + slow.URL + " within --timeout=200ms"},
		{"empty period", func(c *Command) { c.From, c.To = "2026-09-01", "2026-09-02" }, ExitFailed,
			"no data: no ipacct_ip_* or ipacct_tag_* samples from 2026-09-01 00:00 UTC to 2026-09-02 00:00 UTC in Prometheus at " + fake.URL},
		{"unknown tag", func(c *Command) { c.Tags = []string{"t1", "nope"} }, ExitFailed, "no data for tag nope from"},
		{"bad period", func(c *Command) { c.From, c.To, c.Period = "", "", "2026-13" }, ExitUsage, `invalid --period "2026-13"`},
		{"reversed period", func(c *Command) { c.From, c.To = c.To, c.From }, ExitUsage, "empty period"},
		{"bad time zone", func(c *Command) { c.TimeZone = "Mars/Olympus" }, ExitUsage, `invalid --timezone "Mars/Olympus"`},
		{"bad URL", func(c *Command) { c.URL = "localhost:9090" }, ExitUsage, `invalid Prometheus URL "localhost:9090"`},
		{"bad format", func(c *Command) { c.Format = "xml" }, ExitUsage, `unknown --format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := command(fake.URL)
			tc.change(&c)
			code, out, errOut := run(c)
			if code != tc.code || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr with %q", code, errOut, tc.code, tc.stderr)
			}
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
			if !strings.HasPrefix(errOut, "ipacct_exporter report: ") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr is not one line of ours: %q", errOut)
			}
		})
	}
}
