// Command ctsync replicates the Linux conntrack table between the firewalls
// of an active/backup (keepalived) cluster, in the spirit of conntrackd, and
// manages the local kernel table like conntrack(8).
//
// This package is the composition root and nothing else: it holds the cobra
// command tree, turns flags and configuration into components, owns signals
// and maps errors to exit codes (0 success, 1 operational failure, 2 usage
// error). It keeps no package-level mutable state besides the version stamp
// set by the linker. No other package imports it.
//
// See README.md, or run `ctsync help`, for the commands.
package main
