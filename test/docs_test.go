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

// readRepoFile returns a file of the repository, relative to its root.
func readRepoFile(t *testing.T, root, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestREADMEPackageDepends: the README's "Debian package" paragraph names
// every package the .deb depends on (packaging/nfpm.yaml's depends list).
func TestREADMEPackageDepends(t *testing.T) {
	root := moduleRoot(t)
	var depends []string
	in := false
	for line := range strings.Lines(readRepoFile(t, root, "packaging/nfpm.yaml")) {
		switch {
		case strings.HasPrefix(line, "depends:"):
			in = true
		case in && strings.HasPrefix(line, "  - "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  - "), "#")
			depends = append(depends, strings.TrimSpace(name))
		case in && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, " "):
			in = false
		}
	}
	if len(depends) == 0 {
		t.Fatal("packaging/nfpm.yaml: no depends list found")
	}
	readme := readRepoFile(t, root, "README.md")
	_, para, ok := strings.Cut(readme, "**Debian package:**")
	if !ok {
		t.Fatal(`README.md has no "**Debian package:**" paragraph`)
	}
	para, _, _ = strings.Cut(para, "\n- ")
	_, deps, ok := strings.Cut(strings.Join(strings.Fields(para), " "), "It depends on ")
	if !ok {
		t.Fatal(`README.md's "Debian package" paragraph does not say what the package depends on ("It depends on ...")`)
	}
	deps, _, _ = strings.Cut(deps, " recommends")
	deps = strings.TrimSuffix(deps, " and")
	for _, d := range depends {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(d) + `\b`).MatchString(deps) {
			t.Errorf("README.md says the package depends on %q; packaging/nfpm.yaml also depends on %s", deps, d)
		}
	}
}

// TestKeepalivedHealthWeight: in every keepalived example, the weight of
// the `ctsync health` track_script is larger than the difference of the
// base priorities, so that a healthy backup outranks a master that is not
// in sync (a tie would be broken by IP address), and the comment that
// explains the rule quotes the numbers the file uses.
func TestKeepalivedHealthWeight(t *testing.T) {
	root := moduleRoot(t)
	confs, err := filepath.Glob(filepath.Join(root, "contrib/keepalived/*.conf"))
	if err != nil || len(confs) == 0 {
		t.Fatalf("no keepalived example in contrib/keepalived (%v)", err)
	}
	weightRe := regexp.MustCompile(`(?m)^\s*(?:weight|chk_\w+ weight) (-?\d+)\b`)
	prioRe := regexp.MustCompile(`(?m)^\s*priority (\d+)\s*# fw-b: priority (\d+)`)
	ruleRe := regexp.MustCompile(`weight \((\d+)\) must be larger than the difference of the base\s+#\s*priorities \((\d+) - (\d+)`)
	for _, path := range confs {
		conf := readRepoFile(t, root, strings.TrimPrefix(path, root+"/"))
		if !strings.Contains(conf, "ctsync health") {
			continue
		}
		name := filepath.Base(path)
		weights := map[string]bool{}
		for _, m := range weightRe.FindAllStringSubmatch(conf, -1) {
			weights[m[1]] = true
		}
		if len(weights) != 1 {
			t.Errorf("%s: want one health weight used everywhere, found %v", name, weights)
			continue
		}
		var w int
		for k := range weights {
			w, _ = strconv.Atoi(k)
		}
		prios := prioRe.FindAllStringSubmatch(conf, -1)
		if len(prios) == 0 {
			t.Logf("%s: no `priority N # fw-b: priority M` line: the weight is not compared with the priorities", name)
		}
		for _, m := range prios {
			a, _ := strconv.Atoi(m[1])
			b, _ := strconv.Atoi(m[2])
			if diff := max(a-b, b-a); w <= diff {
				t.Errorf("%s: health weight %d is not larger than the difference of the base priorities (%d - %d = %d): "+
					"a healthy backup (%d) would not outrank a master that is not in sync (%d)", name, w, a, b, diff, min(a, b)+w, max(a, b))
			}
			if r := ruleRe.FindStringSubmatch(conf); r != nil && (r[1] != strconv.Itoa(w) || r[2] != m[1] || r[3] != m[2]) {
				t.Errorf("%s: the comment says weight %s and priorities %s - %s; the file uses %d, %s and %s", name, r[1], r[2], r[3], w, m[1], m[2])
			}
		}
	}
}

// TestSymlinkExamplesUsePackagePath: every `ln -s .../ctsync ...` that the
// README, the contrib files and the command help show (the conntrackd
// symlink) points at the path the Debian package installs the binary to.
func TestSymlinkExamplesUsePackagePath(t *testing.T) {
	root := moduleRoot(t)
	nfpm := readRepoFile(t, root, "packaging/nfpm.yaml")
	m := regexp.MustCompile(`(?m)^\s*- src: bin/ctsync\s*\n\s*dst: (\S+)`).FindStringSubmatch(nfpm)
	if m == nil {
		t.Fatal("packaging/nfpm.yaml: no `src: bin/ctsync` entry")
	}
	bin := m[1]
	lnRe := regexp.MustCompile(`ln -s(?:f)? (\S*ctsync)\s`)
	var found int
	for _, f := range repoFiles(t, root) {
		if strings.HasSuffix(f, "_test.go") || !(strings.HasSuffix(f, ".md") || strings.HasSuffix(f, ".go") || strings.HasPrefix(f, "contrib/")) {
			continue
		}
		for i, line := range strings.Split(readRepoFile(t, root, f), "\n") {
			for _, m := range lnRe.FindAllStringSubmatch(line, -1) {
				found++
				if m[1] != bin {
					t.Errorf("%s:%d: ln -s %s: the package installs ctsync as %s", f, i+1, m[1], bin)
				}
			}
		}
	}
	if found == 0 {
		t.Error("no `ln -s .../ctsync` example found: the check would pass vacuously")
	}
}

// readmeSection returns the body of README.md's "## title" section.
func readmeSection(t *testing.T, readme, title string) string {
	t.Helper()
	_, body, ok := strings.Cut(readme, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", "## "+title)
	}
	body, _, _ = strings.Cut(body, "\n## ")
	return body
}

// TestREADMEGuides: the install and migration guides exist and carry the
// facts an operator needs, and the flags the migration guide says
// conntrackd's primary-backup.sh calls are the ones it calls (checked
// against Debian's copy when the conntrackd package is installed).
func TestREADMEGuides(t *testing.T) {
	root := moduleRoot(t)
	readme := readRepoFile(t, root, "README.md")
	install := readmeSection(t, readme, "Install on a firewall pair")
	for _, want := range []string{
		"ctsync keygen", "umask 077", "0600", // key distribution
		"7946", "meta l4proto { tcp, udp }", // the sync link, TCP and UDP
		`script "/usr/bin/ctsync health"`, `notify "/usr/bin/ctsync notify"`, "sync_group_tracking_weight",
		"systemctl enable --now ctsync", "ctsync config check",
		"ctsync members", "ctsync health", "ctsync keys list",
	} {
		if !strings.Contains(install, want) {
			t.Errorf("README.md, Install on a firewall pair: %q is missing", want)
		}
	}
	migrate := readmeSection(t, readme, "Migrating from conntrackd")
	for _, want := range []string{
		"ctsync config import /etc/conntrackd/conntrackd.conf",
		"ln -s /usr/bin/ctsync ", "dpkg-divert --local --rename --add /usr/sbin/conntrackd",
		"CONNTRACKD_BIN=", "ctsync notify backup", "ctsync notify stop",
		"**Cut-over**", "**Rollback**",
	} {
		if !strings.Contains(migrate, want) {
			t.Errorf("README.md, Migrating from conntrackd: %q is missing", want)
		}
	}

	// The flags the guide lists for primary-backup.sh.
	_, said, ok := strings.Cut(migrate, "calls\n`/usr/sbin/conntrackd -C /etc/conntrackd/conntrackd.conf` with")
	if !ok {
		t.Fatal("README.md, Migrating from conntrackd: the sentence saying what primary-backup.sh calls is missing")
	}
	said, _, _ = strings.Cut(said, "Pointing it at ctsync")
	flagRe := regexp.MustCompile("`-([a-zA-Z])`")
	guide := map[string]bool{}
	for _, m := range flagRe.FindAllStringSubmatch(said, -1) {
		guide[m[1]] = true
	}
	const script = "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh"
	data, err := os.ReadFile(script)
	if err != nil {
		t.Skipf("the flags of primary-backup.sh are not checked: %v (install conntrackd)", err)
	}
	calls := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$CONNTRACKD_BIN -C \$CONNTRACKD_CONFIG -([a-zA-Z])`).FindAllStringSubmatch(string(data), -1) {
		calls[m[1]] = true
	}
	for f := range calls {
		if !guide[f] {
			t.Errorf("%s calls conntrackd -%s; README.md's migration guide does not list it", script, f)
		}
	}
	for f := range guide {
		if !calls[f] {
			t.Errorf("README.md's migration guide says primary-backup.sh calls -%s; %s does not", f, script)
		}
	}
	if !strings.Contains(string(data), "CONNTRACKD_BIN=/usr/sbin/conntrackd") {
		t.Errorf("%s no longer calls /usr/sbin/conntrackd, as README.md's migration guide says", script)
	}
}
