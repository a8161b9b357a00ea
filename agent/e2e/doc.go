// Package e2e holds the end-to-end tests of dynoscope: they build the real
// binaries (dynoscope, the demo app), start Debian's Prometheus with its
// remote-write receiver and a loopback Loki receiver, run the agent as a
// process the way Heroku does (its own process group, SIGTERM to the group),
// and assert what arrived at the receivers. Every server listens on a free
// 127.0.0.1 port and is stopped when its test ends.
//
// The package has no code of its own outside the tests.
package e2e
