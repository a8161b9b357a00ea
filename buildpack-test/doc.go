// Package buildpacktest tests the dynoscope buildpack the way Heroku runs it, with no Docker engine:
// bin/detect, bin/compile and bin/release run as real processes on a fixture app copied into a fresh
// BUILD_DIR (also as a non-root user, and again with the cache), and a "dyno" is booted with env -i,
// HOME at the built app, and bash -l -c sourcing .profile.d/*.sh before the Procfile command.
//
// The launcher's logic is tested against a fake dynoscope (testdata/fake-dynoscope) so its checks
// run in milliseconds; the end-to-end tests run the real agent and demo app, and assert on what a
// real Prometheus and the loopback Loki receiver got.
package buildpacktest
