// Package netns opens and enters network namespaces, and says what the
// kernel's refusals to do so mean. Netlink sockets (the nftables collector,
// the managed table) take an open namespace's fd; the iptables collector
// enters the namespace, because iptables-legacy is a process that inherits
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

// File is an open network namespace. Its Fd makes netlink sockets in it
// (google/nftables' WithNetNSFd, netlink.Config.NetNS), which enter it with
// setns as they are made: see Explain for that error.
type File struct{ f *os.File }

// Open opens the namespace at path. The empty path is the exporter's own
// namespace, which needs no file: its Fd is 0, which netlink reads as the
// caller's namespace.
func Open(path string) (*File, error) {
	if path == "" {
		return &File{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace: %w", err)
	}
	return &File{f}, nil
}

// Fd is the namespace's file descriptor, 0 for the exporter's own.
func (f *File) Fd() int {
	if f.f == nil {
		return 0
	}
	return int(f.f.Fd())
}

// Close closes the file; the namespace stays.
func (f *File) Close() error {
	if f.f == nil {
		return nil
	}
	return f.f.Close()
}

// Do runs fn on an OS thread that has joined the namespace at path, and
// returns that thread to the caller's namespace afterwards. Processes that fn
// starts are born in the namespace; sockets that fn opens stay in it. With an
// empty path fn runs where it is. A refusal to enter says that it needs
// CAP_SYS_ADMIN.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := Open(path)
	if err != nil {
		return err
	}
	defer target.Close()

	runtime.LockOSThread()
	self, err := Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", path, Explain(err, ""))
	}
	fnErr := fn()
	if err := setns(self); err != nil {
		// The thread is in the wrong namespace: keep it locked so that the
		// runtime ends it with this goroutine instead of reusing it.
		return fmt.Errorf("returning from network namespace %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// setns moves the calling thread into ns. Its error names the system call,
// as mdlayher/netlink's does, so that Explain knows it for either.
func setns(ns *File) error {
	return os.NewSyscallError("setns", unix.Setns(ns.Fd(), unix.CLONE_NEWNET))
}
