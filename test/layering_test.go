package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ctsync/ctsync"

// goPackage is the part of `go list -json` output the rules look at.
type goPackage struct {
	ImportPath   string
	Standard     bool
	Imports      []string // direct imports of the non-test files
	Deps         []string // all transitive imports of the non-test files
	TestImports  []string // imports of the package's own _test.go files
	XTestImports []string // imports of its external (package x_test) test files
}

// ours reports whether path is a package of this module, and returns its
// path relative to the module root ("kernel", "kernel/kerneltest", "" for
// the root package).
func ours(path string) (rel string, ok bool) {
	if path == module {
		return "", true
	}
	rel, ok = strings.CutPrefix(path, module+"/")
	return rel, ok
}

// under reports whether rel is the package dir or one below it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// hasPrefixPath reports whether the import path is prefix or below it
// (github.com/ti-mo matches github.com/ti-mo/conntrack).
func hasPrefixPath(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// restrictedImports: only the listed packages of ours (relative paths) may
// import anything under the prefix, in code or in tests.
var restrictedImports = []struct {
	prefix  string
	allowed []string
}{
	{"github.com/ti-mo", []string{"kernel", "kernel/kerneltest"}},
	{"github.com/mdlayher", []string{"kernel", "kernel/kerneltest"}},
	{"github.com/hashicorp/memberlist", []string{"sync"}},
	{"github.com/vmihailenco/msgpack", []string{"sync"}},
}

// checkLayering returns one line per violation of the import rules of
// docs/design.md, "Packages and the import rules". Packages that do not exist
// yet simply match no rule.
func checkLayering(pkgs []goPackage) []string {
	std := map[string]bool{"C": true, "unsafe": true}
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
	}
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for _, p := range pkgs {
		rel, ok := ours(p.ImportPath)
		if !ok {
			continue
		}
		direct := slices.Concat(p.Imports, p.TestImports, p.XTestImports)

		// Netlink libraries only in kernel, gossip and its codec only in sync.
		for _, r := range restrictedImports {
			if slices.Contains(r.allowed, rel) {
				continue
			}
			for _, imp := range direct {
				if hasPrefixPath(imp, r.prefix) {
					report("%s imports %s: only %s may import %s", p.ImportPath, imp, strings.Join(r.allowed, ", "), r.prefix)
				}
			}
		}

		switch {
		case rel == "flow":
			// The shared value sits below everything: standard library only.
			for _, dep := range p.Deps {
				if !std[dep] {
					report("%s depends on %s: flow may use the standard library only", p.ImportPath, dep)
				}
			}
		case under(rel, "config"):
			// A leaf: nothing of ours.
			for _, imp := range direct {
				if r, ok := ours(imp); ok && !under(r, "config") {
					report("%s imports %s: config may import nothing of ours", p.ImportPath, imp)
				}
			}
		case rel == "stats", rel == "internal/httpserve":
			// Leaves shared by packages that do not import each other:
			// stats by the writers (agent, sync, cache, control) and the
			// readers (control, metrics, cmd) of the statistics,
			// httpserve by control and metrics. Nothing of ours, in code
			// or tests.
			for _, imp := range slices.Concat(p.Deps, direct) {
				if r, ok := ours(imp); ok && r != rel {
					report("%s depends on %s: %s may import nothing of ours", p.ImportPath, imp, rel)
				}
			}
		case under(rel, "kernel"):
			for _, imp := range slices.Concat(p.Deps, direct) {
				if r, ok := ours(imp); ok && under(r, "sync") {
					report("%s depends on %s: kernel and sync never import each other", p.ImportPath, imp)
				}
			}
		case under(rel, "sync"):
			for _, imp := range slices.Concat(p.Deps, direct) {
				if r, ok := ours(imp); ok && under(r, "kernel") {
					report("%s depends on %s: kernel and sync never import each other", p.ImportPath, imp)
				}
			}
		case rel == "cmd/ctsync/table":
			// conntrack(8)'s grammar works on the kernel table, not the daemon.
			for _, imp := range p.Imports {
				if r, ok := ours(imp); ok && r != "kernel" && r != "flow" {
					report("%s imports %s: the table commands use kernel and flow only", p.ImportPath, imp)
				}
			}
		}

		// Test helpers never reach a binary.
		for _, helper := range testHelpers {
			if rel != helper && slices.Contains(p.Deps, module+"/"+helper) {
				report("%s depends on %s outside its tests: %s is for _test.go files only", p.ImportPath, module+"/"+helper, path.Base(helper))
			}
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems)
}

// testHelpers are the packages only tests may import: fakes of the kernel
// table and of the cluster network, and the polling helper.
var testHelpers = []string{"kernel/kerneltest", "sync/netfake", "test/wait"}

// listModule runs `go list -e -deps -json ./...` at the module root.
func listModule(t *testing.T) []goPackage {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list the module's packages: %v", err)
	}
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Deps,TestImports,XTestImports", "./...")
	cmd.Dir = strings.TrimSpace(string(root))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayering enforces docs/design.md's import rules on the module as it is.
func TestLayering(t *testing.T) {
	pkgs := listModule(t)
	var checked int
	for _, p := range pkgs {
		if _, ok := ours(p.ImportPath); ok {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("go list found no package of this module: the check would pass vacuously")
	}
	for _, problem := range checkLayering(pkgs) {
		t.Error(problem)
	}
}

// TestLayeringRulesCatchViolations feeds the checker a module that breaks
// every rule, so a rule that silently stopped matching fails here.
func TestLayeringRulesCatchViolations(t *testing.T) {
	p := func(rel string) string { return module + "/" + rel }
	pkgs := []goPackage{
		{ImportPath: "fmt", Standard: true},
		{ImportPath: "testing", Standard: true},
		{ImportPath: p("flow"), Imports: []string{"fmt", "github.com/google/go-cmp/cmp"},
			Deps: []string{"fmt", "github.com/google/go-cmp/cmp"}},
		{ImportPath: p("config"), Imports: []string{p("flow")}, Deps: []string{p("flow")}},
		{ImportPath: p("kernel"), Imports: []string{"github.com/ti-mo/conntrack", p("flow")},
			Deps: []string{"github.com/ti-mo/conntrack", p("flow")}, TestImports: []string{p("sync")}},
		{ImportPath: p("sync"), Imports: []string{"github.com/hashicorp/memberlist", p("agent")},
			Deps: []string{"github.com/hashicorp/memberlist", p("agent"), p("kernel")}},
		{ImportPath: p("agent"), Imports: []string{"github.com/mdlayher/netlink", p("kernel/kerneltest")},
			Deps: []string{p("kernel/kerneltest"), "testing"}},
		{ImportPath: p("cache"), XTestImports: []string{"github.com/vmihailenco/msgpack/v5"}},
		{ImportPath: p("cmd/ctsync/table"), Imports: []string{p("kernel"), p("flow"), p("agent")}},
		{ImportPath: p("stats"), Imports: []string{p("agent")}, Deps: []string{p("agent")}},
		{ImportPath: p("internal/httpserve"), Deps: []string{p("control")}},
		{ImportPath: "github.com/other/project", Imports: []string{"github.com/ti-mo/conntrack"}},
	}
	got := checkLayering(pkgs)
	wantFragments := []string{
		"ctsync/flow depends on github.com/google/go-cmp/cmp",
		"ctsync/config imports github.com/ctsync/ctsync/flow",
		"ctsync/kernel depends on github.com/ctsync/ctsync/sync",
		"ctsync/sync depends on github.com/ctsync/ctsync/kernel",
		"ctsync/agent imports github.com/mdlayher/netlink",
		"ctsync/agent depends on github.com/ctsync/ctsync/kernel/kerneltest outside its tests",
		"ctsync/cache imports github.com/vmihailenco/msgpack/v5",
		"ctsync/cmd/ctsync/table imports github.com/ctsync/ctsync/agent",
		"ctsync/stats depends on github.com/ctsync/ctsync/agent",
		"ctsync/internal/httpserve depends on github.com/ctsync/ctsync/control",
	}
	for _, want := range wantFragments {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("checkLayering missed a violation containing %q; got:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(wantFragments) {
		t.Errorf("checkLayering reported %d problems, want %d:\n%s", len(got), len(wantFragments), strings.Join(got, "\n"))
	}
	for _, s := range got {
		if strings.Contains(s, "other/project") {
			t.Errorf("checkLayering judged a package outside the module: %s", s)
		}
	}
}
