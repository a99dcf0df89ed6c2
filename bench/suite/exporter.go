package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// prometheusAccept is the Accept header of a Prometheus 3 scrape with its
// default scrape_protocols; the exporter answers with the text format.
const prometheusAccept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// exporterProc is a running exporter binary.
type exporterProc struct {
	cmd     *exec.Cmd
	url     string
	client  *http.Client
	gzip    bool
	logPath string // its output, in the run's temporary directory
	stop    func()
}

// startExporter runs the exporter on the namespace ns with the collector
// flags collectors, listening on a free port of 127.0.0.1, and waits
// until it answers.
func startExporter(cfg config, ns *namespace, collectors []string) (*exporterProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"--netns", ns.Name, "--web.listen-address", addr,
		"--scrape.timeout", cfg.scrapeTimeout.String(), "--log.level", "warn"}, collectors...)
	ex := &exporterProc{
		cmd:     exec.Command(cfg.binary, args...),
		url:     "http://" + addr,
		gzip:    cfg.gzip,
		logPath: filepath.Join(cfg.tmp, ns.Name+".log"),
		// Compression, if any, is asked for by hand, so that the client
		// leaves the body as sent and a scrape's time does not include
		// its decompression.
		client: &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{DisableCompression: true}},
	}
	logFile, err := os.Create(ex.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the process has its own copy
	ex.cmd.Stdout, ex.cmd.Stderr = logFile, logFile
	if err := ex.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the exporter: %w", err)
	}
	ex.stop = atExit(ex.terminate)
	if err := ex.waitReady(15 * time.Second); err != nil {
		ex.stop()
		return nil, err
	}
	return ex, nil
}

// terminate stops the exporter: SIGTERM, and SIGKILL after 5 s.
func (ex *exporterProc) terminate() {
	_ = ex.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = ex.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = ex.cmd.Process.Kill()
		<-done
	}
}

// waitReady waits, up to timeout, until the exporter's landing page
// answers: it does once the server listens, without the scrape that
// /metrics would make.
func (ex *exporterProc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(ex.url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the exporter did not answer on %s: %v\n%s", ex.url, err, ex.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches /metrics as Prometheus does and returns the body as sent.
func (ex *exporterProc) scrape() ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, ex.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", prometheusAccept)
	if ex.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := ex.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s: %.500s\nexporter log:\n%s", resp.Status, body, ex.log())
	}
	return body, nil
}

// log is the start of the exporter's output, enough to say what went
// wrong.
func (ex *exporterProc) log() string {
	f, err := os.Open(ex.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// decode undoes the gzip of a body, if it has any.
func decode(body []byte) ([]byte, error) {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
