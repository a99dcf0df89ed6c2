package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/config"
)

// yamlBlock is a fenced YAML block of a Markdown page.
var yamlBlock = regexp.MustCompile("(?s)\n```yaml\n(.*?)```")

// rulesKey tells a rules.yaml example from the other YAML the pages show
// (web config, Prometheus' scrape config): a top-level key of rules.yaml.
var rulesKey = regexp.MustCompile(`(?m)^(accounting|addresses):`)

// TestRulesExamplesAreValid checks that every rules.yaml example in the
// README and docs/*.md loads as the exporter would load it, so that an
// operator who copies one gets a valid file.
func TestRulesExamplesAreValid(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join("..", "README.md"))
	checked := 0
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatchIndex(data, -1) {
			block := data[m[2]:m[3]]
			if !rulesKey.Match(block) {
				continue
			}
			// Blank lines before the block make its errors name the
			// page's lines.
			before := strings.Count(string(data[:m[2]]), "\n")
			padded := append([]byte(strings.Repeat("\n", before)), block...)
			if _, err := config.Parse(page, padded); err != nil {
				t.Errorf("the example at %s:%d does not load:\n%v", page, before+1, err)
			}
			checked++
		}
	}
	// The README alone shows three; none found means the pattern is stale.
	if checked < 3 {
		t.Errorf("only %d rules.yaml examples found", checked)
	}
}
