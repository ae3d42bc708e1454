package test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot returns the module's root directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// repoFiles lists the repository's files, relative to root: the files git
// tracks, or, outside a git checkout, every file below root but .git, bin
// and dist (build output).
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		for f := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case ".git", "bin", "dist":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the repository's files: %v", err)
	}
	return files
}

// outsideRef matches references to documents that are not in the
// repository: a contract, a style guide, research notes, a shared folder
// beside the checkout. The words are split so that this file does not
// match itself.
var outsideRef = regexp.MustCompile(`\b` + `CONT` + `RACT` + `\b|` + `STYLE` + `\.md|\b` + `research` + `/|\.\./` + `shared\b|/work/` + `shared\b`)

// findOutsideRefs returns "path:line: text" for every line of the files
// that refers to a document outside the repository.
func findOutsideRefs(t *testing.T, root string, files []string) []string {
	t.Helper()
	var hits []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if os.IsNotExist(err) { // deleted in the work tree, not yet committed
				continue
			}
			t.Fatalf("read %s: %v", f, err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		for i, line := range strings.Split(string(data), "\n") {
			if outsideRef.MatchString(line) {
				hits = append(hits, f+":"+strconv.Itoa(i+1)+": "+strings.TrimSpace(line))
			}
		}
	}
	return hits
}

// TestDocsStandAlone: code comments, tests, scripts and documents refer
// only to documents in the repository (docs/, README.md, ...), never to a
// contract, style guide or research notes kept somewhere else, which a
// reader of the repository does not have.
func TestDocsStandAlone(t *testing.T) {
	root := moduleRoot(t)
	files := repoFiles(t, root)
	if len(files) < 50 {
		t.Fatalf("found only %d files below %s: the check would pass vacuously", len(files), root)
	}
	for _, hit := range findOutsideRefs(t, root, files) {
		t.Errorf("refers to a document outside the repository: %s", hit)
	}
	// The documents the code cites exist.
	for _, doc := range []string{"README.md", "docs/design.md", "docs/interface.md"} {
		if _, err := os.Stat(filepath.Join(root, doc)); err != nil {
			t.Errorf("%s is cited by the code but missing: %v", doc, err)
		}
	}
}

// TestDocsStandAloneCatches feeds the scan lines it must catch and lines
// it must let pass, so a pattern that silently stopped matching fails here.
func TestDocsStandAloneCatches(t *testing.T) {
	dir := t.TempDir()
	bad := []string{
		"// the exit codes of " + "CONT" + "RACT" + " §3",
		"see " + "CONT" + "RACT" + ".md §3.3",
		"// import rules of " + "STYLE" + ".md",
		"(see " + "research" + "/libraries.md §2)",
		"cat ../" + "shared/notes",
		"/work/" + "shared/x",
	}
	good := []string{
		"// the exit codes of docs/interface.md",
		"a contractor's STYLE of writing",
		"researchers/ and shared memory",
	}
	content := strings.Join(append(append([]string{}, bad...), good...), "\n")
	if err := os.WriteFile(filepath.Join(dir, "f.go"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	hits := findOutsideRefs(t, dir, []string{"f.go"})
	if len(hits) != len(bad) {
		t.Fatalf("caught %d lines, want the %d bad ones:\n%s", len(hits), len(bad), strings.Join(hits, "\n"))
	}
	for i, h := range hits {
		if want := "f.go:" + strconv.Itoa(i+1) + ":"; !strings.HasPrefix(h, want) {
			t.Errorf("hit %d = %q, want line %d", i, h, i+1)
		}
	}
}
