// Command dynoscope is the in-dyno agent: it scrapes the app's /metrics and
// remote-writes the samples to Grafana Cloud, and ships the app's log lines
// to Loki, without ever getting in the app's way.
//
// main is wiring and signals only: every stage lives in agent/internal.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// stdio is what a command reads and writes; tests pass buffers.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

// command is one subcommand: its name, a line of help, and its body.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, environ []string, std stdio) int
}

func commands() []command {
	return []command{
		{"agent", "", "run the forwarder until SIGTERM (what the buildpack starts)", cmdAgent},
		{"run", "-- CMD [ARGS...]", "run CMD with the agent in-process; CMD's output is passed through and shipped", cmdRun},
		{"tee", "--stream stdout|stderr", "copy stdin to stdout and offer each line to the running agent", teeCommand},
		{"check", "", "check the configuration, targets and endpoints once; exit non-zero on any failure", cmdCheck},
		{"config", "", "print the effective configuration, secrets masked", cmdConfig},
		{"setup", "--app NAME --environment ENV [--apply]", "print (or run) the Heroku CLI commands that set an app up", setupCommand},
		{"version", "", "print the version", cmdVersion},
	}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Environ(), stdio{os.Stdin, os.Stdout, os.Stderr}))
}

func run(ctx context.Context, args []string, environ []string, std stdio) int {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		usage(std.out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if _, own := helpTexts[c.name]; len(args) > 1 && isHelp(args[1]) && (own || c.name == "version") {
				fmt.Fprintf(std.out, "Usage: %s\n\n%s.\n", strings.TrimSpace("dynoscope "+c.name+" "+c.args), c.summary)
				commandHelp(std.out, c.name)
				return 0
			}
			return c.run(ctx, args[1:], environ, std)
		}
	}
	fmt.Fprintf(std.errOut, "dynoscope: unknown command %q\n\n", args[0])
	usage(std.errOut)
	return 2
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: dynoscope COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nConfiguration comes from environment variables (Heroku config vars);\n"+
		"`dynoscope config` prints them. `dynoscope COMMAND --help` tells more.\n")
}

func cmdVersion(_ context.Context, _ []string, _ []string, std stdio) int {
	fmt.Fprintf(std.out, "dynoscope %s\n", version)
	return 0
}

// getenvFrom turns an environ list into a lookup, the last value winning as
// in the process environment.
func getenvFrom(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}
