package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// cleanups undoes what the suite set up (namespaces, exporter processes,
// the temporary directory), last first, on every way out: a normal end,
// a fatal error and SIGINT or SIGTERM.
var cleanups struct {
	mu  sync.Mutex
	fns []func()
}

// atExit registers fn to run at exit; the returned func runs it now
// instead, once.
func atExit(fn func()) (runNow func()) {
	var once sync.Once
	wrapped := func() { once.Do(fn) }
	cleanups.mu.Lock()
	cleanups.fns = append(cleanups.fns, wrapped)
	cleanups.mu.Unlock()
	return wrapped
}

// cleaning serializes cleanup: a second caller (main ending while a
// signal's cleanup runs) waits until the first is done, so that neither
// exits before everything is undone.
var cleaning sync.Mutex

// interrupted is set when a signal stops the run.
var interrupted atomic.Bool

// cleanup runs every registered cleanup, last first.
func cleanup() {
	cleaning.Lock()
	defer cleaning.Unlock()
	cleanups.mu.Lock()
	fns := cleanups.fns
	cleanups.fns = nil
	cleanups.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// handleSignals cleans up and exits on SIGINT, SIGTERM or SIGHUP.
func handleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-ch
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\n%v: cleaning up\n", s)
		cleanup()
		os.Exit(130)
	}()
}

// exit cleans up and exits, unless a signal is doing that already.
func exit(code int) {
	cleanup()
	if interrupted.Load() {
		select {} // the signal handler exits
	}
	os.Exit(code)
}

// fatal prints the error, cleans up and exits.
func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "suite: "+format+"\n", args...)
	exit(1)
}

// nsSeq numbers the namespaces of this run.
var nsSeq int

// namespace is a network namespace that the suite created, named
// ipacct-bench-<pid>-<n> so that it can never be another's.
type namespace struct {
	Name string
	del  func()
}

// Path is the namespace's file, for netns.Do and the collector.
func (ns *namespace) Path() string { return "/run/netns/" + ns.Name }

// Close deletes the namespace (also registered to run at exit).
func (ns *namespace) Close() { ns.del() }

func newNamespace() (*namespace, error) {
	nsSeq++
	name := fmt.Sprintf("ipacct-bench-%d-%d", os.Getpid(), nsSeq)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &namespace{Name: name}
	ns.del = atExit(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip netns del %s: %v: %s\n", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return ns, nil
}
