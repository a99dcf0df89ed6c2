package netns_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/ipacct/ipacct_exporter/internal/netns"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// TestCheckOwner: the exporter's own namespace passes; one in a user
// namespace of its own, as unshare -rn makes, is refused with the uid that
// made it; a path that is gone is an error of another kind.
func TestCheckOwner(t *testing.T) {
	if err := netns.CheckOwner("/proc/self/ns/net"); err != nil {
		t.Errorf("own namespace: %v", err)
	}
	if err := netns.CheckOwner("/run/netns/ipacct-never-made"); err == nil || errors.Is(err, netns.ErrOtherUserNamespace) {
		t.Errorf("missing namespace: %v", err)
	}

	path := netnstest.NewUserNS(t, "", "")
	err := netns.CheckOwner(path)
	if want := fmt.Sprintf("network namespace %s is owned by a user namespace other than the exporter's, made by uid %d", path, os.Getuid()); !errors.Is(err, netns.ErrOtherUserNamespace) || err.Error() != want {
		t.Errorf("namespace in its own user namespace: %v, want %s", err, want)
	}
}
