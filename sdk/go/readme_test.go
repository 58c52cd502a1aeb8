package garbagetruck_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippets checks that every code block marked <!-- snippet --> in
// README.md is, verbatim, a function of example_test.go, where an Example
// runs it against a real broker: the README's code runs as written.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "example_test.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]string{}
	for _, decl := range file.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok {
			funcs[fn.Name.Name] = string(src[fset.Position(fn.Pos()).Offset:fset.Position(fn.End()).Offset])
		}
	}
	blocks := strings.Split(string(readme), "<!-- snippet -->\n```go\n")
	if len(blocks) < 9 {
		t.Fatalf("README has %d snippets, expected at least 8", len(blocks)-1)
	}
	for _, b := range blocks[1:] {
		code, _, ok := strings.Cut(b, "\n```")
		if !ok {
			t.Fatalf("unterminated snippet: %.60q", b)
		}
		f, err := parser.ParseFile(token.NewFileSet(), "README.md", "package p\n"+code, 0)
		if err != nil || len(f.Decls) != 1 {
			t.Errorf("snippet is not exactly one function (%v):\n%s", err, code)
			continue
		}
		name := f.Decls[0].(*ast.FuncDecl).Name.Name
		if funcs[name] != code {
			t.Errorf("README's %s differs from example_test.go's:\nREADME:\n%s\nexample_test.go:\n%s", name, code, funcs[name])
		}
	}
}
