package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/internal/exetest"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// TestVersion builds the exporter from a git repository holding the
// module as it is now, and checks what --version and
// ipacct_exporter_build_info say: built without -ldflags, the version
// and revision Go embeds (a pseudo-version naming the commit); built as
// the release is (make build, which the Dockerfile runs), the VERSION
// file's version, the revision and the branch.
func TestVersion(t *testing.T) {
	netnstest.RequireTools(t, "git", "make")
	src := committedCopy(t)
	rev := strings.TrimSpace(runIn(t, src, nil, "git", "rev-parse", "HEAD"))
	bin := t.TempDir()
	// -buildvcs=true: where GOFLAGS turns VCS stamping off, this build
	// still has it. -trimpath lets make build reuse the compiled packages.
	vcs := []string{"GOFLAGS=-buildvcs=true"}

	plain := filepath.Join(bin, "plain")
	runIn(t, src, vcs, "go", "build", "-trimpath", "-o", plain, ".")
	pseudo := `0\.0\.0-\d{14}-` + rev[:12]
	checkVersion(t, plain, pseudo, "", rev)

	release := filepath.Join(bin, "release")
	runIn(t, src, vcs, "make", "build", "BIN="+release)
	v, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	checkVersion(t, release, regexp.QuoteMeta(strings.TrimSpace(string(v))), "test", rev)

	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^RUN make build `).Match(docker) {
		t.Error("the Dockerfile does not build with make build: its image would not carry the version")
	}
}

// checkVersion runs bin --version and scrapes its build_info: both must
// give the version (a regular expression), the branch and the revision.
func checkVersion(t *testing.T, bin, version, branch, revision string) {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	want := regexp.MustCompile(`^ipacct_exporter, version ` + version + ` \(branch: ` + regexp.QuoteMeta(branch) +
		`, revision: ` + regexp.QuoteMeta(revision) + `\)\n`)
	if err != nil || !want.Match(out) {
		t.Errorf("%s --version: %v\n%s\nwant it to match %s", filepath.Base(bin), err, out, want)
	}

	addr := exetest.FreeAddr(t)
	url := "http://" + addr
	exetest.Start(t, filepath.Base(bin), url+"/", 15*time.Second,
		exec.Command(bin, "--web.listen-address="+addr, "--no-collector.iptables"))
	_, fams := scrapeWith(t, http.DefaultClient, url)
	info := fams["ipacct_exporter_build_info"]
	if info == nil || len(info.Metric) != 1 {
		t.Fatalf("%s: ipacct_exporter_build_info: %v", filepath.Base(bin), info)
	}
	labels := map[string]string{}
	for _, l := range info.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if !regexp.MustCompile(`^`+version+`$`).MatchString(labels["version"]) || labels["branch"] != branch || labels["revision"] != revision {
		t.Errorf("%s: ipacct_exporter_build_info%v; want version %s, branch %q, revision %s", filepath.Base(bin), labels, version, branch, revision)
	}
}

// committedCopy copies the module's files (tracked and untracked, not
// ignored, as they are in the working tree) to a new git repository, on
// branch test, and commits them: a checkout with a clean tree, whatever
// the working tree or its .git is (Go does not stamp a git worktree's
// builds).
func committedCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	list := runIn(t, "..", nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, name := range strings.Split(strings.TrimSuffix(list, "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join("..", name))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := []string{"-c", "user.name=test", "-c", "user.email=test@example.invalid"}
	runIn(t, dst, nil, "git", "init", "-q", "-b", "test")
	runIn(t, dst, nil, "git", "add", "-A")
	runIn(t, dst, nil, "git", append(git, "commit", "-q", "-m", "test")...)
	return dst
}

// runIn runs a command in dir with env added, failing the test if it
// fails, and returns its standard output.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
