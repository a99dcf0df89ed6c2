// Package docs holds no code: it is the folder of ipacct_exporter's
// documentation, and of the test that keeps its links working.
package docs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// link is a Markdown link or image target: [text](target).
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks checks that every relative link of the README and of docs/*.md
// names a file or folder of the repository, and that every #anchor names a
// heading of the Markdown file it points into, as GitHub makes anchors.
func TestLinks(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join("..", "README.md"))
	if len(pages) < 2 {
		t.Fatalf("found only %v", pages)
	}
	for _, page := range pages {
		lines, err := prose(page)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range lines {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				if err := checkLink(page, m[1]); err != nil {
					t.Errorf("%s:%d: link %s: %v", page, n+1, m[1], err)
				}
			}
		}
	}
}

func TestAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Across restarts: `--state.file`":                        "across-restarts---statefile",
		"rules.yaml: let the exporter install the rules":         "rulesyaml-let-the-exporter-install-the-rules",
		"The flow collector's own metrics":                       "the-flow-collectors-own-metrics",
		"1. Comment → metric (a scrape)":                         "1-comment--metric-a-scrape",
		"Monthly reports: `ipacct_exporter report`":              "monthly-reports-ipacct_exporter-report",
		"Nothing is served until every source could be read":     "nothing-is-served-until-every-source-could-be-read",
		"From the README: how a scrape is fast, and the summary": "from-the-readme-how-a-scrape-is-fast-and-the-summary",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// checkLink checks one link target of page.
func checkLink(page, target string) error {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return nil // not ours to check offline
	}
	path, frag, _ := strings.Cut(target, "#")
	file := page
	if path != "" {
		file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
		if _, err := os.Stat(file); err != nil {
			return err
		}
	}
	if frag == "" {
		return nil
	}
	if !strings.HasSuffix(file, ".md") {
		return fmt.Errorf("an anchor into %s, which is not Markdown", file)
	}
	anchors, err := anchors(file)
	if err != nil {
		return err
	}
	if !anchors[frag] {
		return fmt.Errorf("%s has no heading with the anchor #%s", file, frag)
	}
	return nil
}

// prose returns the lines of a Markdown file, with those of fenced code
// blocks blanked: a "# comment" in a shell block is no heading, and
// "[x](y)" in code is no link.
func prose(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	fenced := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			line = ""
		}
		if fenced {
			line = ""
		}
		lines = append(lines, line)
	}
	return lines, sc.Err()
}

// anchors returns the anchors of the headings of a Markdown file; a
// repeated one gets -1, -2, … as on GitHub.
func anchors(path string) (map[string]bool, error) {
	lines, err := prose(path)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range lines {
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		a := anchor(text)
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out, nil
}

// anchor is GitHub's anchor of a heading: lower case, letters, digits,
// '_' and '-' kept, spaces made '-', everything else dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
