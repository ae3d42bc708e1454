// Package kerneltest holds helpers for tests that need a real kernel
// conntrack table: a privilege gate, throw-away network namespaces, and a way
// to run commands (conntrack(8), ip(8)) inside them as an oracle.
//
// It is imported only by _test.go files (test/layering_test.go enforces
// this); production code never depends on it. It may use the standard library
// and github.com/vishvananda/netns, nothing else.
//
// # Privileged tests
//
// Tests that touch the kernel start with [RequirePrivileged] (or
// [NewNetNS], which calls it). When the process is not root or cannot create
// a network namespace, the test is skipped with the reason; when the
// environment sets CTSYNC_REQUIRE_PRIVILEGED=1, as CI does, the skip becomes
// a failure, so a green run cannot hide a skipped tier.
//
// # Namespaces
//
// [NewNetNS] creates a named namespace with `ip netns add` (so commands and
// other processes can enter it by name) and deletes it, after killing every
// process left inside, when the test ends. No test goroutine or OS thread is
// ever moved into the namespace: commands enter it through `ip netns exec`,
// and Go code can open it with [NetNSFd] (for netlink.Config.NetNS).
//
// All helpers are safe for concurrent use by parallel tests.
package kerneltest
