package netns_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// TestExplain: a refused setns names CAP_SYS_ADMIN (and CAP_NET_ADMIN for
// what follows, when there is a what), a refused netlink request names
// CAP_NET_ADMIN, and other errors pass unchanged and still unwrap.
func TestExplain(t *testing.T) {
	setns := fmt.Errorf("dumping rules: %w", os.NewSyscallError("setns", unix.EPERM))
	other := errors.New("no such table")
	for _, tc := range []struct {
		name string
		err  error
		what string
		want string // the whole message; "" for the error unchanged
	}{
		{"setns", setns, "reading nftables", "dumping rules: setns: operation not permitted (entering another network namespace (--netns) needs CAP_SYS_ADMIN, beside CAP_NET_ADMIN for reading nftables)"},
		{"setns without what", setns, "", "dumping rules: setns: operation not permitted (entering another network namespace (--netns) needs CAP_SYS_ADMIN)"},
		{"netlink EPERM", fmt.Errorf("netlink receive: %w", unix.EPERM), "reading nftables",
			"netlink receive: operation not permitted (reading nftables needs the capability CAP_NET_ADMIN, which the exporter does not have: grant it, as an ambient or file capability, or run as root with it)"},
		{"EPERM without what", unix.EPERM, "", ""},
		{"other", other, "reading nftables", ""},
		{"nil", nil, "reading nftables", ""},
	} {
		got := netns.Explain(tc.err, tc.what)
		if tc.want == "" {
			if got != tc.err {
				t.Errorf("%s: %v, want the error unchanged", tc.name, got)
			}
			continue
		}
		if got == nil || got.Error() != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("%s: %v\nwant %s, wrapping %v", tc.name, got, tc.want, tc.err)
		}
	}
}

// TestOpen: the exporter's own namespace opens to fd 0, which netlink reads
// as the caller's; a namespace that does not exist is an error saying so,
// from Open and from Do alike, and Do then runs nothing.
func TestOpen(t *testing.T) {
	own, err := netns.Open("")
	if err != nil || own.Fd() != 0 || own.Close() != nil {
		t.Errorf("own namespace: fd %d, %v", own.Fd(), err)
	}
	self, err := netns.Open("/proc/self/ns/net")
	if err != nil || self.Fd() <= 0 {
		t.Fatalf("/proc/self/ns/net: %v", err)
	}
	self.Close()
	const missing = "/run/netns/ipacct-never-made"
	if _, err := netns.Open(missing); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "network namespace: ") {
		t.Errorf("missing namespace: %v", err)
	}
	ran := false
	if err := netns.Do(missing, func() error { ran = true; return nil }); !errors.Is(err, fs.ErrNotExist) || ran {
		t.Errorf("Do in a missing namespace: %v, ran %v", err, ran)
	}
}
