package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// The build stamps these with -ldflags "-X main.version=... -X main.commit=..."
// (see the Makefile). They are the only package-level variables of main and
// are never written at run time.
var (
	version = "dev"
	commit  = "unknown"
)

// buildInfo describes the running binary.
type buildInfo struct {
	Version   string
	Commit    string
	GoVersion string
	Platform  string
}

func currentBuildInfo() buildInfo {
	bi := buildInfo{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		bi.GoVersion = info.GoVersion
		if bi.Commit == "unknown" {
			// A plain `go build` in a git checkout records the revision.
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					bi.Commit = s.Value
				}
			}
		}
	}
	return bi
}

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(s.out, versionText())
			return err
		},
	}
}

// versionText is what `ctsync version` and `ctsync --version` print.
func versionText() string {
	bi := currentBuildInfo()
	return fmt.Sprintf("version: %s\ncommit:  %s\ngo:      %s %s\n", bi.Version, bi.Commit, bi.GoVersion, bi.Platform)
}
