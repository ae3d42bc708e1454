package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"
)

// runDaemonOnce runs a daemon with dup's settings but a's socket, expecting
// it to exit at once; it returns its output.
func runDaemonOnce(a, dup *node) (string, error) {
	cfg, err := os.ReadFile(a.cfg)
	if err != nil {
		return "", err
	}
	c := strings.Replace(string(cfg), a.addr, dup.addr, 1)
	if err := os.WriteFile(dup.cfg, []byte(c), 0o600); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.ns, binary, "daemon", "--config", dup.cfg).CombinedOutput()
	return string(out), err
}
