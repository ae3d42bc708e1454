package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/config"
)

// addKeygenCommand adds `ctsync keygen` (docs/interface.md, "The daemon and
// helpers").
func addKeygenCommand(root *cobra.Command, s *streams) {
	root.AddCommand(&cobra.Command{
		Use:   "keygen",
		Short: "Print a new random 32-byte cluster key, base64",
		Long: `Print a new random 32-byte (AES-256) cluster key, base64 encoded. Store it
on every node, readable by root only:

  ctsync keygen > /etc/ctsync/cluster.key && chmod 600 /etc/ctsync/cluster.key`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			key, err := config.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(s.out, key)
			return err
		},
	})
}
