// Package exetest runs the exporter's binary, and servers beside it, for
// the tests of several packages: the end-to-end tests, the dashboards'
// proof against Prometheus, and the report's.
package exetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds ipacct_exporter once per test process and returns its
// path. A TestMain calls RemoveBinary when the tests are done.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ipacct-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "ipacct_exporter")
		// go test puts its own go first on PATH; the package path works
		// from any directory of the module.
		out, err := exec.Command("go", "build", "-o", binary, "github.com/ipacct/ipacct_exporter").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// RemoveBinary deletes what Binary built, if anything.
func RemoveBinary() {
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
}

// SyncBuffer collects a process's output, written and read from
// different goroutines, for the log of a failed test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor returns the output once it holds substr, or what there is after
// timeout: a process's output reaches the buffer through a pipe, after
// whatever the process did next, such as answering a scrape.
func (s *SyncBuffer) WaitFor(substr string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		out := s.String()
		if strings.Contains(out, substr) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start runs cmd, which the test stops when it ends, showing its output if
// the test failed. It waits, up to timeout, until GET ready answers 200,
// and returns the output collected so far and to come.
func Start(t testing.TB, name, ready string, timeout time.Duration, cmd *exec.Cmd) *SyncBuffer {
	t.Helper()
	logs := Run(t, name, cmd)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s: %v\n%s", name, ready, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run starts cmd, collecting its output; it is stopped when the test ends,
// and its output logged if the test failed.
func Run(t testing.TB, name string, cmd *exec.Cmd) *SyncBuffer {
	t.Helper()
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		stop(cmd)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	return logs
}

// stopTimeout bounds the wait for a process that SIGTERM asked to stop.
const stopTimeout = 10 * time.Second

// stop ends cmd as a service manager does: SIGTERM, so that it cleans up
// (the exporter gives up its claim on the managed table), then SIGKILL
// after stopTimeout. A process that ended already is only waited for.
func stop(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}
