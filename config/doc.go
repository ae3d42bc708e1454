// Package config is the ctsync configuration file (docs/interface.md,
// "Configuration file"): its schema as Go types, the defaults, a strict loader
// and a validator that reports every problem at once with its key path, plus
// the cluster key format (GenerateKey, ParseKey).
//
// Load and Parse only decode: unknown keys, repeated keys and values of the
// wrong type are errors (Problems naming each key and line), keys left out
// keep the value of Default. Validate then checks the values, including that
// the cluster key file exists, holds a valid key and is private. DefaultYAML
// is the commented default file `ctsync config default` prints.
//
// It is not a layered loader: no environment variables, no flag merging and
// no file watching; the command line decides what overrides what, and a
// reload is a new Load whose result replaces the old Config. Config values are
// plain data with no locks: do not mutate one that other goroutines read.
//
// It is a leaf: it imports only the standard library and go.yaml.in/yaml/v3.
// The main package (cmd/ctsync) imports it and hands the relevant parts to
// the other packages, which do not import it themselves.
package config
