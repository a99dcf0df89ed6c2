package managed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ClaimDir is where exporters claim the tables they manage, unless systemd
// gives the service a runtime directory of its own ($RUNTIME_DIRECTORY, from
// RuntimeDirectory=).
const ClaimDir = "/run/ipacct_exporter"

// Claim is an exporter's hold on one managed table in one network
// namespace: an exclusive flock(2) on a file named after the namespace and
// the table, which says who holds it. The kernel drops the lock when the
// process ends, however it ends, so a claim never outlives its exporter.
type Claim struct {
	f    *os.File
	path string
}

// ClaimedError is the refusal to manage a table that a live exporter holds.
type ClaimedError struct {
	Table string
	File  string // the claim's file
	Owner string // who holds it, as the holder wrote it
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("table inet %s in this network namespace is managed by another ipacct_exporter (%s; claimed in %s): stop it, or give this one another table name in rules.yaml", e.Table, e.Owner, e.File)
}

// ClaimTable claims the table in the network namespace at netns ("" for
// the exporter's own); who says what for, such as "--config.file PATH".
// A claim held by a live process is a *ClaimedError.
func ClaimTable(netns, table, who string) (*Claim, error) {
	path, err := claimPath(netns, table)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("claiming table inet %s: %w (the exporter needs a directory it may write: %s, or systemd's RuntimeDirectory=)", table, err, ClaimDir)
	}
	// A holder that releases its claim deletes the file: the file locked
	// must still be the one at path, or the lock is on a file nobody sees.
	for range 10 {
		f, writable, err := openClaim(path)
		if err != nil {
			return nil, fmt.Errorf("claiming table inet %s: %w", table, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &ClaimedError{Table: table, File: path, Owner: readOwner(path)}
			}
			return nil, fmt.Errorf("claiming table inet %s: locking %s: %w", table, path, err)
		}
		switch {
		case !samefile(f, path):
			f.Close()
			continue
		case !writable:
			// Left by an exporter of another user that was killed: the
			// lock says nobody holds it. Make it again as ours.
			os.Remove(path)
			f.Close()
			continue
		}
		owner := fmt.Sprintf("PID %d, %s", os.Getpid(), who)
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt([]byte(owner+"\n"), 0)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("claiming table inet %s: writing %s: %w", table, path, err)
		}
		return &Claim{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("claiming table inet %s: %s keeps being replaced", table, path)
}

// openClaim opens the claim's file, or creates it. A file another user's
// exporter made opens for reading only, which is enough to lock it and to
// read who holds it.
func openClaim(path string) (f *os.File, writable bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(path)
		return f, false, err
	}
	return f, err == nil, err
}

// Release gives the claim up.
func (c *Claim) Release() {
	if c == nil {
		return
	}
	os.Remove(c.path) // while locked, so nobody holds the file removed
	c.f.Close()
}

// claimPath names the claim of a table in the namespace at netns ("" for
// the exporter's own) after the namespace's inode, which is the same for
// every path to it and for every process in it.
func claimPath(netns, table string) (string, error) {
	if netns == "" {
		netns = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if err := unix.Stat(netns, &st); err != nil {
		return "", fmt.Errorf("network namespace %s: %w", netns, err)
	}
	dir := ClaimDir
	if rd := os.Getenv("RUNTIME_DIRECTORY"); rd != "" {
		dir, _, _ = strings.Cut(rd, ":")
	}
	return filepath.Join(dir, "net-"+strconv.FormatUint(st.Ino, 10)+".inet-"+table+".lock"), nil
}

// readOwner returns what the holder of the claim at path wrote. A holder
// writes just after it locks: give it a moment.
func readOwner(path string) string {
	for range 20 {
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && s != "" {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "it has not said who it is"
}

// samefile reports whether f is the file at path.
func samefile(f *os.File, path string) bool {
	a, errA := f.Stat()
	b, errB := os.Stat(path)
	return errA == nil && errB == nil && os.SameFile(a, b)
}
