package docs

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pathLine is a line of architecture.md's paths: a Go file, then the names
// it does the step with, then (after two spaces or more) what happens.
var pathLine = regexp.MustCompile(`^\s*(\S+\.go)\s+(.+?)(?:\s{2,}.*)?$`)

// TestArchitectureNamesExist checks that every file:function line of the
// paths in architecture.md names a file of the repository and, for each of
// its names, a function, method or type declared in that file, so that the
// paths cannot drift from the code unnoticed.
func TestArchitectureNamesExist(t *testing.T) {
	f, err := os.Open("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checked := 0
	inCode := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		m := pathLine.FindStringSubmatch(line)
		if !inCode || m == nil {
			continue
		}
		declared, err := declarations(filepath.Join("..", m[1]))
		if err != nil {
			t.Errorf("architecture.md:%d: %v", n, err)
			continue
		}
		for _, name := range strings.Split(m[2], ",") {
			name = strings.TrimSpace(name)
			// Type.Method, or a function; the words after it are prose.
			name, _, _ = strings.Cut(name, " ")
			if !declared[name] {
				t.Errorf("architecture.md:%d: %s declares no %s", n, m[1], name)
			}
			checked++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// The three paths name well over a hundred; a few means the format
	// changed and this test no longer reads them.
	if checked < 100 {
		t.Errorf("only %d names checked in architecture.md's paths", checked)
	}
}

// declarations are the names a Go file declares: its functions, its types,
// and its methods as Type.Method.
func declarations(path string) (map[string]bool, error) {
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, d := range file.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				name = receiverType(d.Recv.List[0].Type) + "." + name
			}
			names[name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					names[ts.Name.Name] = true
				}
			}
		}
	}
	return names, nil
}

// receiverType is the name of a method's receiver type, without * or type
// parameters.
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
