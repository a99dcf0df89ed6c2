// Package netns runs code inside another network namespace. The nftables
// collector does not need it (netlink sockets take a namespace fd); the
// iptables collector does, because iptables-legacy is a process that inherits
// the namespace of the thread that starts it.
package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Path resolves a namespace given as a name under /run/netns or as a path
// (/proc/PID/ns/net, /run/netns/NAME). The empty string is the exporter's own
// namespace and stays empty.
func Path(nameOrPath string) string {
	if nameOrPath == "" || strings.ContainsRune(nameOrPath, '/') {
		return nameOrPath
	}
	return filepath.Join("/run/netns", nameOrPath)
}

// Do runs fn on an OS thread that has joined the namespace at path, and
// returns that thread to the caller's namespace afterwards. Processes that fn
// starts are born in the namespace; sockets that fn opens stay in it. With an
// empty path fn runs where it is.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer target.Close()

	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is in the wrong namespace: keep it locked so that the
		// runtime ends it with this goroutine instead of reusing it.
		return fmt.Errorf("returning from network namespace %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}
