package netns

import (
	"errors"
	"fmt"
	"os"
)

// Explain adds to the kernel's refusal the capability the exporter lacks:
// CAP_SYS_ADMIN when it could not enter another network namespace (setns,
// by Do or by a netlink socket made with a File's Fd), CAP_NET_ADMIN when
// netlink refused what, such as "reading nftables". With what empty, only
// the refusal to enter is explained. Other errors come back as they are.
func Explain(err error, what string) error {
	var sysErr *os.SyscallError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &sysErr) && sysErr.Syscall == "setns":
		if what == "" {
			return fmt.Errorf("%w (entering another network namespace (--netns) needs CAP_SYS_ADMIN)", err)
		}
		return fmt.Errorf("%w (entering another network namespace (--netns) needs CAP_SYS_ADMIN, beside CAP_NET_ADMIN for %s)", err, what)
	case what != "" && errors.Is(err, os.ErrPermission): // EPERM or EACCES
		return fmt.Errorf("%w (%s needs the capability CAP_NET_ADMIN, which the exporter does not have: grant it, as an ambient or file capability, or run as root with it)", err, what)
	}
	return err
}
