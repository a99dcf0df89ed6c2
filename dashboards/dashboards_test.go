package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The dashboards' JSON, decoded as far as the tests look into it.
type dashboard struct {
	file string // base name
	raw  []byte

	UID     string `json:"uid"`
	Title   string `json:"title"`
	Refresh string `json:"refresh"`
	Time    struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Query      json.RawMessage `json:"query"`
	Datasource *dsRef          `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	Multi      bool            `json:"multi"`
	AllValue   string          `json:"allValue"`
	Sort       int             `json:"sort"`
	Current    *struct {
		Value any `json:"value"`
	} `json:"current"`
}

// query is the variable's query when it is a string, as label_values
// queries are.
func (v variable) query() string {
	var s string
	_ = json.Unmarshal(v.Query, &s)
	return s
}

// isAll tells whether the variable's saved selection is "All".
func (v variable) isAll() bool {
	if v.Current == nil {
		return false
	}
	switch c := v.Current.Value.(type) {
	case string:
		return c == "$__all"
	case []any:
		return len(c) == 1 && c[0] == "$__all"
	}
	return false
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Datasource  *dsRef   `json:"datasource"`
	Interval    string   `json:"interval"`
	TimeFrom    string   `json:"timeFrom"`
	GridPos     gridPos  `json:"gridPos"`
	Targets     []target `json:"targets"`
	Panels      []panel  `json:"panels"` // of a row
	Links       []link   `json:"links"`
	FieldConfig struct {
		Defaults struct {
			Links []link `json:"links"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

type gridPos struct{ X, Y, W, H int }

type target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Instant      bool   `json:"instant"`
	Format       string `json:"format"`
	Interval     string `json:"interval"`
	Datasource   *dsRef `json:"datasource"`
}

type link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// loadDashboards reads every dashboard of the folder.
func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("want the 3 dashboards (overview, tenants, addresses), found %v", files)
	}
	var ds []*dashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := &dashboard{file: f, raw: raw}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// allPanels is the dashboard's panels, those of rows included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func (d *dashboard) variable(name string) (variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

// The JSON Schemas in schema/, made by schema/generate.sh from Grafana's
// TypeScript types: one for the dashboard model, one per panel plugin for
// its options and its fieldConfig.defaults.custom, one for a Prometheus
// query.
var panelSchemas = map[string]struct{ options, custom string }{
	"timeseries": {"timeseries-options", "timeseries-fieldconfig"},
	"stat":       {"stat-options", ""},
	"table":      {"table-options", "table-fieldconfig"},
}

type schemas struct {
	c     *jsonschema.Compiler
	docs  map[string]map[string]any // by name, as decoded
	paths map[string]string         // by name
}

func loadSchemas(t *testing.T) *schemas {
	t.Helper()
	s := &schemas{c: jsonschema.NewCompiler(), docs: map[string]map[string]any{}, paths: map[string]string{}}
	files, err := filepath.Glob("schema/*.schema.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema/*.schema.json: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".schema.json")
		if err := s.c.AddResource(f, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.docs[name] = doc.(map[string]any)
		s.paths[name] = f
	}
	return s
}

// compile compiles the schema name, or the part of it at the JSON pointer
// ptr ("" for the whole).
func (s *schemas) compile(t *testing.T, name, ptr string) *jsonschema.Schema {
	t.Helper()
	sch, err := s.c.Compile(s.paths[name] + "#" + ptr)
	if err != nil {
		t.Fatalf("compiling %s#%s: %v", name, ptr, err)
	}
	return sch
}

// property returns the JSON pointer of property prop of the object that
// schema name describes, following its root's $refs, and whether the
// schema has one.
func (s *schemas) property(name, prop string) (string, bool) {
	node := s.docs[name]
	ptr := ""
	for i := 0; i < 8; i++ {
		ref, ok := node["$ref"].(string)
		if !ok {
			break
		}
		ptr = strings.TrimPrefix(ref, "#")
		node = s.docs[name]
		for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
			node, _ = node[part].(map[string]any)
		}
	}
	props, _ := node["properties"].(map[string]any)
	if _, ok := props[prop]; !ok {
		return "", false
	}
	return ptr + "/properties/" + prop, true
}

// validate checks value (Go values as jsonschema.UnmarshalJSON makes them)
// against sch, and reports the violations with where.
func validate(t *testing.T, sch *jsonschema.Schema, value any, where string) {
	t.Helper()
	if err := sch.Validate(value); err != nil {
		t.Errorf("%s:\n%#v", where, err)
	}
}

// TestDashboardsSchema validates every dashboard against Grafana's
// dashboard schema, and each panel's options, custom field config, field
// config overrides and targets against the schema of its panel plugin and
// of the Prometheus query. The schemas have "additionalProperties": false,
// so an unknown or misspelt field fails too.
func TestDashboardsSchema(t *testing.T) {
	s := loadSchemas(t)
	dashSchema := s.compile(t, "dashboard", "")
	querySchema := s.compile(t, "prometheus-query", "")
	for _, d := range loadDashboards(t) {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.raw))
		if err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		validate(t, dashSchema, doc, d.file)

		var panels []map[string]any
		top, _ := doc.(map[string]any)["panels"].([]any)
		for _, pv := range top {
			p, _ := pv.(map[string]any)
			panels = append(panels, p)
			inner, _ := p["panels"].([]any)
			for _, iv := range inner {
				ip, _ := iv.(map[string]any)
				panels = append(panels, ip)
			}
		}
		if len(panels) == 0 {
			t.Errorf("%s: no panels", d.file)
		}
		for _, p := range panels {
			typ, _ := p["type"].(string)
			where := fmt.Sprintf("%s: panel %v %q", d.file, p["id"], p["title"])
			if typ == "row" {
				continue
			}
			ps, ok := panelSchemas[typ]
			if !ok {
				t.Errorf("%s: panel type %q has no schema here; add it to schema/types.ts and panelSchemas", where, typ)
				continue
			}
			validate(t, s.compile(t, ps.options, ""), p["options"], where+" options")
			fc, _ := p["fieldConfig"].(map[string]any)
			defaults, _ := fc["defaults"].(map[string]any)
			if custom, ok := defaults["custom"]; ok {
				if ps.custom == "" {
					t.Errorf("%s: fieldConfig.defaults.custom, but %s panels have none", where, typ)
				} else {
					validate(t, s.compile(t, ps.custom, ""), custom, where+" fieldConfig.defaults.custom")
				}
			}
			overrides, _ := fc["overrides"].([]any)
			for i, ov := range overrides {
				ovm, _ := ov.(map[string]any)
				props, _ := ovm["properties"].([]any)
				for _, prv := range props {
					pr, _ := prv.(map[string]any)
					id, _ := pr["id"].(string)
					// custom.X is X of the plugin's field config;
					// anything else a field of the dashboard's.
					schema, ptr, ok := "dashboard", "/definitions/FieldConfig/properties/"+id, false
					if field, custom := strings.CutPrefix(id, "custom."); custom {
						schema = ps.custom
						if schema != "" {
							ptr, ok = s.property(schema, field)
						}
					} else {
						ok = s.hasPath(schema, ptr)
					}
					if !ok {
						t.Errorf("%s: override %d sets %q, which is no field config property of a %s panel", where, i, id, typ)
						continue
					}
					validate(t, s.compile(t, schema, ptr), pr["value"], fmt.Sprintf("%s override %d %s", where, i, id))
				}
			}
			targets, _ := p["targets"].([]any)
			for i, tv := range targets {
				validate(t, querySchema, tv, fmt.Sprintf("%s target %d", where, i))
			}
		}
	}
}

// hasPath tells whether schema name has a node at the JSON pointer ptr.
func (s *schemas) hasPath(name, ptr string) bool {
	var node any = s.docs[name]
	for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if node, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// Grafana's own variables that the dashboards use.
var builtins = []string{"__rate_interval", "__range", "__interval", "__url_time_range", "__value.raw"}

// varRef finds the variables that a query, title or link refers to: $name,
// ${name} and ${name:format}.
var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)(?::([A-Za-z]+))?\}|\$([A-Za-z0-9_]+)`)

// rangeRef finds the range of a range vector selector or subquery.
var rangeRef = regexp.MustCompile(`\[([^\]]*)\]`)

// recordRef finds the names of recorded series (level:metric:operations).
var recordRef = regexp.MustCompile(`\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b`)

// dashLink is a link to a dashboard of ours: /d/UID/slug?query.
var dashLink = regexp.MustCompile(`^/d/([a-z0-9-]+)/[a-z0-9-]+\?(.*)$`)

// TestDashboardsStructure checks what a schema cannot: that each dashboard
// has a Prometheus data source variable that all its panels and targets
// use, unique panel ids and uids, panels on the grid without overlap,
// variables that exist, rates over $__rate_interval, recorded series that
// rules.yml records, and links to dashboards and variables that exist.
func TestDashboardsStructure(t *testing.T) {
	ds := loadDashboards(t)
	records := recordedNames(t)
	byUID := map[string]*dashboard{}
	for _, d := range ds {
		if want := strings.TrimSuffix(d.file, ".json"); d.UID != want {
			t.Errorf("%s: uid %q, want %q, its file name: links use it", d.file, d.UID, want)
		}
		if byUID[d.UID] != nil {
			t.Errorf("%s: uid %q is %s's too", d.file, d.UID, byUID[d.UID].file)
		}
		byUID[d.UID] = d
		if d.Title == "" || d.Time.From == "" || d.Time.To != "now" || d.Refresh == "" {
			t.Errorf("%s: want a title, a default range ending now and a refresh; have %q, %+v, %q", d.file, d.Title, d.Time, d.Refresh)
		}
	}
	for _, d := range ds {
		checkDashboard(t, d, byUID, records)
	}
}

func checkDashboard(t *testing.T, d *dashboard, byUID map[string]*dashboard, records map[string]bool) {
	var dsVars []variable
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			dsVars = append(dsVars, v)
		}
	}
	if len(dsVars) != 1 || dsVars[0].Name != "datasource" || dsVars[0].query() != "prometheus" {
		t.Errorf("%s: want one data source variable \"datasource\" of type prometheus, have %+v", d.file, dsVars)
	}
	want := dsRef{Type: "prometheus", UID: "${datasource}"}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || *v.Datasource != want {
			t.Errorf("%s: variable %s: data source %+v, want %+v", d.file, v.Name, v.Datasource, want)
		}
		if !strings.HasPrefix(v.query(), "label_values(") {
			t.Errorf("%s: variable %s: query %q is not label_values(…), which the Prometheus test evaluates", d.file, v.Name, v.query())
		}
		if v.IncludeAll && !v.isAll() {
			t.Errorf("%s: variable %s: offers All but does not select it", d.file, v.Name)
		}
		checkRefs(t, d, fmt.Sprintf("%s: variable %s", d.file, v.Name), v.query())
	}

	ids := map[int]string{}
	var boxes []panel
	for _, p := range d.allPanels() {
		where := fmt.Sprintf("%s: panel %d %q", d.file, p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] != "" {
			t.Errorf("%s: id %d is missing or also panel %q's", where, p.ID, ids[p.ID])
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is off the 24-column grid", where, g)
		}
		for _, b := range boxes {
			o := b.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("%s: overlaps panel %d %q", where, b.ID, b.Title)
			}
		}
		boxes = append(boxes, p)
		checkRefs(t, d, where+" title", p.Title)
		if p.Type == "row" {
			continue
		}
		if p.Description == "" {
			t.Errorf("%s: no description: say what the panel shows and from which metric", where)
		}
		if p.Datasource == nil || *p.Datasource != want {
			t.Errorf("%s: data source %+v, want %+v", where, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			tw := fmt.Sprintf("%s target %s", where, tg.RefID)
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("%s: refId missing or repeated", tw)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource == nil || *tg.Datasource != want {
				t.Errorf("%s: data source %+v, want %+v", tw, tg.Datasource, want)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: no expr", tw)
			}
			checkRefs(t, d, tw, tg.Expr)
			checkRefs(t, d, tw+" legend", tg.LegendFormat)
			for _, m := range rangeRef.FindAllStringSubmatch(tg.Expr, -1) {
				switch m[1] {
				case "$__rate_interval", "$__range", "$__range:":
				case "$__interval":
					if p.Interval == "" {
						t.Errorf("%s: [$__interval] in a panel without a minimum interval; use $__rate_interval", tw)
					}
				default:
					t.Errorf("%s: range [%s]: a dashboard's windows follow its time range, with $__rate_interval, $__range or $__interval", tw, m[1])
				}
			}
			for _, name := range recordRef.FindAllString(tg.Expr, -1) {
				if !records[name] {
					t.Errorf("%s: uses %s, which rules.yml does not record", tw, name)
				}
			}
		}
		var links []link
		links = append(links, p.Links...)
		links = append(links, p.FieldConfig.Defaults.Links...)
		for _, ov := range p.FieldConfig.Overrides {
			for _, pr := range ov.Properties {
				if pr.ID != "links" {
					continue
				}
				var ls []link
				if err := json.Unmarshal(pr.Value, &ls); err != nil {
					t.Errorf("%s: links override: %v", where, err)
				}
				links = append(links, ls...)
			}
		}
		for _, l := range links {
			checkLink(t, d, where, l, byUID)
		}
	}
}

// checkRefs reports the variables that s refers to and d does not have.
func checkRefs(t *testing.T, d *dashboard, where, s string) {
	t.Helper()
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		name := m[1] + m[3]
		if slices.Contains(builtins, name) {
			continue
		}
		if _, ok := d.variable(name); !ok {
			t.Errorf("%s: $%s is not a variable of the dashboard", where, name)
		}
	}
}

// checkLink checks a link to one of our dashboards: the dashboard exists,
// and has every variable the link sets, by var-NAME= or ${NAME:queryparam}.
func checkLink(t *testing.T, d *dashboard, where string, l link, byUID map[string]*dashboard) {
	t.Helper()
	checkRefs(t, d, where+" link "+l.Title, l.URL+" "+l.Title)
	m := dashLink.FindStringSubmatch(l.URL)
	if m == nil {
		t.Errorf("%s: link %q: not a link to /d/UID/slug?…", where, l.URL)
		return
	}
	to := byUID[m[1]]
	if to == nil {
		t.Errorf("%s: link %q: no dashboard has uid %s", where, l.URL, m[1])
		return
	}
	for _, param := range strings.Split(m[2], "&") {
		var name string
		if v, ok := strings.CutPrefix(param, "var-"); ok {
			name, _, _ = strings.Cut(v, "=")
		} else if r := varRef.FindStringSubmatch(param); r != nil && r[2] == "queryparam" {
			name = r[1]
		} else {
			continue
		}
		if _, ok := to.variable(name); !ok {
			t.Errorf("%s: link %q sets variable %s, which %s does not have", where, l.URL, name, to.file)
		}
	}
}

// rulesFile is rules.yml (and a rules_test.yml's rule_files), as far as the
// tests look into it.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) rulesFile {
	t.Helper()
	b, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	return f
}

// recordedNames is the names rules.yml records.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

// TestDashboardsUseRecordingRules checks that the rate recording rules
// serve the dashboards, as the issue asks: each rate5m rule appears in at
// least one panel.
func TestDashboardsUseRecordingRules(t *testing.T) {
	used := map[string]bool{}
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				for _, name := range recordRef.FindAllString(tg.Expr, -1) {
					used[name] = true
				}
			}
		}
	}
	var unused []string
	for name := range recordedNames(t) {
		if strings.HasSuffix(name, ":rate5m") && !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("no dashboard uses %v", unused)
	}
}
