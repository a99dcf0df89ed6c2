package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun runs the commands through run, as main does, where they need
// neither root nor a kernel: their exit codes and what they print. The
// e2e package runs the built binary for the rest.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	rules := write("rules.yaml", "accounting:\n  - tag: web\n    ports: [80]\n    protocol: udp\n")
	typo := write("typo.yaml", "accounting:\n  - tag: web\n    portz: [80]\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must be in the output; none: the output is empty
		stderr []string
	}{
		// config check and dry run
		{"check", []string{"--config.file=" + rules, "--config.check"}, 0,
			[]string{rules + ": valid, 1 accounting entries, 0 addresses entries\n"}, nil},
		{"check serve", []string{"serve", "--config.file=" + rules, "--config.check"}, 0, []string{"valid, 1 accounting entries"}, nil},
		{"dry run", []string{"--config.file=" + rules, "--config.dry-run"}, 0, []string{"table inet ipacct {", `th dport 80 counter comment "=web_in="`}, nil},
		{"check and dry run", []string{"--config.file=" + rules, "--config.dry-run", "--config.check"}, 0, []string{"table inet ipacct {", "valid, 1 accounting"}, nil},
		{"check the example", []string{"--config.file=rules.example.yaml", "--config.check"}, 0, []string{"rules.example.yaml: valid"}, nil},
		{"check without file", []string{"--config.check"}, 2, nil, []string{"--config.check and --config.dry-run need --config.file"}},
		{"check a typo", []string{"--config.file=" + typo, "--config.check"}, 1, nil, []string{typo + ":3", "portz"}},
		{"check a missing file", []string{"--config.file=" + filepath.Join(dir, "none.yaml"), "--config.dry-run"}, 1, nil, []string{"none.yaml", "no such file"}},

		// flags
		{"unknown flag", []string{"--no-such-flag"}, 2, nil, []string{"ipacct_exporter: unknown long flag '--no-such-flag'"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{"ipacct_exporter: "}},
		{"report flag to serve", []string{"--prometheus.url=http://127.0.0.1:9090"}, 2, nil, []string{"unknown long flag '--prometheus.url'"}},
		{"empty netns", []string{"--netns="}, 2, nil, []string{"--netns: empty value"}},
		{"bad netns glob", []string{"--netns=a["}, 2, nil, []string{`--netns "a["`}},
		{"rules in several namespaces", []string{"--config.file=" + rules, "--netns=a", "--netns=b"}, 2, nil, []string{"--config.file and cleanup manage rules in one network namespace"}},
		{"cleanup in a glob", []string{"cleanup", "--netns=ipacct-*"}, 2, nil, []string{"--config.file and cleanup manage rules in one network namespace"}},
		{"cleanup with a typo", []string{"cleanup", "--config.file=" + typo}, 1, nil, []string{typo + ":3"}},
		{"bad table pattern", []string{"--collector.table=ip ["}, 2, nil, []string{"--collector.table or --collector.chain"}},
		{"every collector off", []string{"--no-collector.nftables", "--no-collector.iptables"}, 2, nil, []string{"every collector is disabled"}},
		{"flow without rules", []string{"--collector.flow.listen-address=127.0.0.1:0"}, 2, nil, []string{"--collector.flow.listen-address needs --config.file"}},
		// No shipped file used the name before flow: it has no alias.
		{"netflow's old flag", []string{"--collector.netflow.listen-address=127.0.0.1:0"}, 2, nil, []string{"unknown long flag '--collector.netflow.listen-address'"}},
		{"serve a typo", []string{"--config.file=" + typo, "--web.listen-address=127.0.0.1:0"}, 1, nil, []string{`msg="rules.yaml not applied"`, "portz"}},

		// report: what fails before it asks Prometheus, and Prometheus
		// unreachable (nothing listens on port 1 of 127.0.0.1)
		{"report bad period", []string{"report", "--period=2024-13"}, 2, nil, []string{"ipacct_exporter report: ", "2024-13"}},
		{"report bad format", []string{"report", "--format=xml"}, 2, nil, []string{"ipacct_exporter: ", "xml"}},
		{"report email of no tag", []string{"report", "--format=email", "--period=2024-01"}, 2, nil, []string{"--format=email reports one tenant: give --tag once"}},
		{"report short chunk", []string{"report", "--chunk=10ms", "--period=2024-01"}, 2, nil, []string{"--chunk must be at least 1s"}},
		{"report daemon flag", []string{"report", "--config.file=" + rules}, 2, nil, []string{"unknown long flag '--config.file'"}},
		{"report unreachable", []string{"report", "--prometheus.url=http://127.0.0.1:1", "--period=2024-01", "--timeout=30s"}, 1, nil, []string{"ipacct_exporter report: ", "127.0.0.1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			check := func(what, got string, want []string) {
				if len(want) == 0 && got != "" {
					t.Errorf("%s, want none:\n%s", what, got)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s lacks %q:\n%s", what, w, got)
					}
				}
			}
			check("stdout", stdout.String(), tc.stdout)
			check("stderr", stderr.String(), tc.stderr)
		})
	}
}
