package table

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// openPTY returns a pseudo-terminal's controller and its terminal side.
func openPTY(t *testing.T) (ctl, tty *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		kerneltest.SkipOrFail(t, fmt.Sprintf("no pseudo-terminal: %v", err))
	}
	t.Cleanup(func() { ctl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		kerneltest.SkipOrFail(t, fmt.Sprintf("unlock pseudo-terminal: %v", err))
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		kerneltest.SkipOrFail(t, fmt.Sprintf("pseudo-terminal number: %v", err))
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		kerneltest.SkipOrFail(t, fmt.Sprintf("open pseudo-terminal: %v", err))
	}
	t.Cleanup(func() { tty.Close() })
	return ctl, tty
}

func TestConfirmFlush(t *testing.T) {
	tests := []struct {
		answer string
		req    ctRequest
		prompt string
		ok     bool
	}{
		{"y\n", ctRequest{}, "Flush the whole conntrack table? [y/N] ", true},
		{"YES\n", ctRequest{}, "Flush the whole conntrack table? [y/N] ", true},
		{"\n", ctRequest{}, "Flush the whole conntrack table? [y/N] ", false},
		{"n\n", ctRequest{family: flow.IPv6, netns: "fw-b"}, "Flush every ipv6 entry of the conntrack table of network namespace fw-b? [y/N] ", false},
	}
	for _, tt := range tests {
		ctl, tty := openPTY(t)
		if _, err := ctl.WriteString(tt.answer); err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		err := confirmFlush(&streams{in: tty, out: new(bytes.Buffer), err: &errOut}, &tt.req)
		if (err == nil) != tt.ok {
			t.Errorf("answer %q: %v, want ok=%v", tt.answer, err, tt.ok)
		}
		if errOut.String() != tt.prompt {
			t.Errorf("prompt %q, want %q", errOut.String(), tt.prompt)
		}
		if err != nil && !strings.Contains(err.Error(), "flush cancelled; the table was not changed") {
			t.Errorf("answer %q: error %q", tt.answer, err)
		}
	}
	// --yes asks nothing; no terminal refuses.
	var errOut bytes.Buffer
	if err := confirmFlush(&streams{in: strings.NewReader(""), err: &errOut}, &ctRequest{yes: true}); err != nil || errOut.Len() != 0 {
		t.Errorf("--yes: %v, prompt %q", err, errOut.String())
	}
	if err := confirmFlush(&streams{in: strings.NewReader("y\n"), err: &errOut}, &ctRequest{}); err == nil {
		t.Error("no terminal and no --yes: flush confirmed")
	}
}
