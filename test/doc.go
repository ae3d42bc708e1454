// Package test holds the project-wide tests that span packages: the import
// layering rules of docs/design.md (layering_test.go), the documentation
// checks (docs_test.go: no reference to a document outside the repository;
// README and examples against the code and the package) and, as they are
// written, the multi-node cluster scenarios (several nodes in one process on
// 127.0.0.x) and the end-to-end tier (test/e2e: the real binary in network
// namespaces).
//
// It is not a library: nothing imports it.
package test
