package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// NewUserNS makes what any local user can with unshare -rn: a network
// namespace in a user namespace of its own. uid makes it ("" keeps the
// test's own; else through setpriv), after loading ruleset (nft syntax; ""
// loads none) into it. It returns the namespace's path, /proc/PID/ns/net of
// a process that sleeps in it until the test ends.
func NewUserNS(t testing.TB, uid, ruleset string) string {
	t.Helper()
	tools := []string{"unshare"}
	if uid != "" {
		tools = append(tools, "setpriv")
	}
	if ruleset != "" {
		tools = append(tools, "nft")
	}
	RequireRoot(t, tools...)
	var args []string
	if uid != "" {
		args = []string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups"}
	}
	script := "exec sleep 600"
	if ruleset != "" {
		script = "nft -f - && " + script
	}
	args = append(args, "unshare", "--user", "--map-root-user", "--net", "sh", "-c", script)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(ruleset)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Once the shell has become sleep, the namespace has its rules.
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(comm); string(b) == "sleep\n" {
			return fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no namespace made in 15 s: %s", strings.Join(args, " "), out.String())
		}
	}
}
