package netns

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// nsGetUserNS is NS_GET_USERNS, _IO(0xb7, 0x1) in linux/nsfs.h, which
// golang.org/x/sys/unix lacks: on a namespace's fd it opens the user
// namespace that owns it.
const nsGetUserNS = 0xb701

// ErrOtherUserNamespace is the error of CheckOwner for a namespace that a
// user namespace other than the exporter's own owns.
var ErrOtherUserNamespace = errors.New("owned by a user namespace other than the exporter's")

// ownUserNS identifies the exporter's user namespace, which does not change.
var ownUserNS = sync.OnceValues(func() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Stat("/proc/self/ns/user", &st)
	return st, err
})

// CheckOwner returns nil when the network namespace at path is owned by the
// exporter's own user namespace, the initial one on a host, where only the
// administrator makes namespaces. Any local user can make one in a user
// namespace of their own (unshare -rn), and fill its tables with tagged
// counters of their choosing: for such a namespace, or one whose owner the
// exporter cannot see, it returns an error wrapping ErrOtherUserNamespace.
func CheckOwner(path string) error {
	if path == "" {
		return nil // the exporter's own
	}
	ns, err := Open(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	owner, err := unix.IoctlRetInt(ns.Fd(), nsGetUserNS)
	if errors.Is(err, unix.EPERM) {
		// The owner is outside the exporter's user namespace.
		return fmt.Errorf("network namespace %s is %w", path, ErrOtherUserNamespace)
	}
	if err != nil {
		return fmt.Errorf("network namespace %s: its user namespace: %w", path, err)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		return fmt.Errorf("network namespace %s: its user namespace: %w", path, err)
	}
	own, err := ownUserNS()
	if err != nil {
		return fmt.Errorf("the exporter's user namespace: %w", err)
	}
	if st.Dev == own.Dev && st.Ino == own.Ino {
		return nil
	}
	uid, err := unix.IoctlGetUint32(owner, unix.NS_GET_OWNER_UID)
	if err != nil {
		return fmt.Errorf("network namespace %s is %w", path, ErrOtherUserNamespace)
	}
	return fmt.Errorf("network namespace %s is %w, made by uid %d", path, ErrOtherUserNamespace, uid)
}
