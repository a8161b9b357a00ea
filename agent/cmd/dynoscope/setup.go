package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Defaults of `dynoscope setup`.
const (
	// setupBuildpackURL is the buildpack users add; setup pins it to this binary's release tag.
	setupBuildpackURL = "https://github.com/brainbytesai/dynoscope"
	// setupDefaultEnvironment is the ENVIRONMENT label when --environment is not given.
	setupDefaultEnvironment = "production"
)

// setupVar is one config var that setup sets, and how it is shown.
type setupVar struct {
	name        string
	placeholder string // printed when the value is not in the environment
	secret      bool   // never printed; a placeholder or a mask instead
}

// setupGroup is a forwarder's config vars: set all of them or none.
type setupGroup struct {
	name string
	vars []setupVar
}

var setupGroups = []setupGroup{
	{"metrics", []setupVar{
		{"GRAFANA_CLOUD_PROMETHEUS_URL", "<https://prometheus-prod-NN-prod-REGION.grafana.net/api/prom/push>", false},
		{"GRAFANA_CLOUD_PROMETHEUS_USER", "<prometheus-instance-id>", false},
		{"GRAFANA_CLOUD_PROMETHEUS_PASSWORD", "<grafana-cloud-access-policy-token>", true},
	}},
	{"logs", []setupVar{
		{"GRAFANA_CLOUD_LOKI_URL", "<https://logs-prod-NNN.grafana.net/loki/api/v1/push>", false},
		{"GRAFANA_CLOUD_LOKI_USER", "<loki-user-id>", false},
		{"GRAFANA_CLOUD_LOKI_PASSWORD", "<grafana-cloud-access-policy-token>", true},
	}},
}

// appNamePattern is what Heroku accepts as an app name.
var appNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// setupStep is one Heroku CLI invocation: its arguments and how to print it.
type setupStep struct {
	args  []string // passed to heroku when applying
	shown string   // the command line as printed (placeholders or masks for secrets)
}

// setupCommand adapts cmdSetup to main's command table.
func setupCommand(ctx context.Context, args []string, environ []string, io stdio) int {
	return cmdSetup(ctx, args, getenvFrom(environ), io.out, io.errOut)
}

// cmdSetup implements `dynoscope setup --app NAME [--app NAME...] [--environment ENV] [--apply]`.
// It prints the Heroku CLI commands that add the buildpack at index 1, enable runtime-dyno-metadata
// and set the config vars of each app (secrets as placeholders); with --apply it runs them with the
// heroku CLI found on env("PATH"), taking the Grafana Cloud values from env. It returns the exit status.
func cmdSetup(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var apps stringList
	fs.Var(&apps, "app", "Heroku app `NAME` (repeat for every app of the environment)")
	environment := fs.String("environment", setupDefaultEnvironment, "the ENVIRONMENT label of these apps, e.g. staging")
	apply := fs.Bool("apply", false, "run the commands with the heroku CLI instead of printing them")
	buildpack := fs.String("buildpack", defaultBuildpack(version), "buildpack `URL` to add (pin a release with #vX.Y.Z)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dynoscope setup --app NAME [--app NAME...] [--environment ENV] [--apply]\n\n"+
			"Prints the Heroku CLI commands that install dynoscope on each app; --apply runs them,\n"+
			"taking GRAFANA_CLOUD_* values from this shell's environment (secrets are never printed).\n\n")
		fs.PrintDefaults()
	}
	for _, a := range args {
		if isHelp(a) { // asked for: the help goes to stdout, as every command's does
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := validateSetup(apps, *environment, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "dynoscope setup: %v\n", err)
		return 2
	}
	env = nonNilEnv(env)
	steps, skipped, err := setupSteps(apps, strings.ToLower(*environment), *buildpack, env, *apply)
	if err != nil {
		fmt.Fprintf(stderr, "dynoscope setup: %v\n", err)
		return 2
	}
	if !*apply {
		printSetup(stdout, steps)
		return 0
	}
	heroku, err := lookPathIn("heroku", env("PATH"))
	if err != nil {
		fmt.Fprintf(stderr, "dynoscope setup: --apply needs the heroku CLI on the PATH (%v): "+
			"install it (https://devcenter.heroku.com/articles/heroku-cli), or run without --apply and paste the commands\n", err)
		return 1
	}
	for _, group := range skipped {
		fmt.Fprintf(stderr, "dynoscope setup: no GRAFANA_CLOUD_* variables of the %s forwarder in the environment: "+
			"leaving it off (set them and run again to turn it on)\n", group)
	}
	for i, s := range steps {
		fmt.Fprintf(stdout, "$ %s\n", s.shown)
		cmd := exec.CommandContext(ctx, heroku, s.args...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "dynoscope setup: %s: %v; %d of %d commands not run (fix the cause and run setup again: every command is safe to repeat)\n",
				s.args[0], err, len(steps)-i, len(steps))
			return 1
		}
	}
	return 0
}

// validateSetup checks the flags that need no environment.
func validateSetup(apps []string, environment string, rest []string) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see --help)", rest[0])
	}
	if len(apps) == 0 {
		return errors.New("--app NAME is required (repeat it to set up several apps)")
	}
	for _, app := range apps {
		if !appNamePattern.MatchString(app) {
			return fmt.Errorf("--app %q is not a Heroku app name (lower-case letters, digits and dashes, starting with a letter)", app)
		}
	}
	if environment == "" || strings.ContainsAny(environment, " \t\n'\"$`\\") {
		return fmt.Errorf("--environment %q must be a single word such as staging or production", environment)
	}
	return nil
}

// setupSteps builds the commands for every app. When applying, the values come from env: a
// forwarder whose variables are all missing is skipped (its name returned), a partial one is an error.
func setupSteps(apps []string, environment, buildpack string, env func(string) string, apply bool) ([]setupStep, []string, error) {
	configArgs := []string{"ENVIRONMENT=" + environment}
	configShown := []string{"ENVIRONMENT=" + shellQuote(environment)}
	var skipped []string
	for _, g := range setupGroups {
		var missing []string
		for _, v := range g.vars {
			if env(v.name) == "" {
				missing = append(missing, v.name)
			}
		}
		if apply && len(missing) == len(g.vars) {
			skipped = append(skipped, g.name)
			continue
		}
		if apply && len(missing) > 0 {
			return nil, nil, fmt.Errorf("--apply takes the %s forwarder's credentials from the environment, and %s %s not set: "+
				"export %s (or none of its variables, to leave %s off)", g.name, strings.Join(missing, ", "),
				plural(len(missing), "is", "are"), strings.Join(missing, ", "), g.name)
		}
		for _, v := range g.vars {
			value := env(v.name)
			configArgs = append(configArgs, v.name+"="+value)
			switch {
			case value == "" || (v.secret && !apply):
				configShown = append(configShown, v.name+"="+shellQuote(v.placeholder))
			case v.secret:
				configShown = append(configShown, v.name+"=****")
			default:
				configShown = append(configShown, v.name+"="+shellQuote(value))
			}
		}
	}
	if apply && len(skipped) == len(setupGroups) {
		return nil, nil, errors.New("--apply found no GRAFANA_CLOUD_* variables in the environment: export the URL, USER " +
			"and PASSWORD of the metrics and/or logs forwarder (run without --apply to see them)")
	}
	var steps []setupStep
	for _, app := range apps {
		for _, args := range [][]string{
			{"buildpacks:add", "--index", "1", buildpack, "-a", app},
			{"labs:enable", "runtime-dyno-metadata", "-a", app},
		} {
			steps = append(steps, setupStep{args: args, shown: "heroku " + shellJoin(args)})
		}
		args := append(append([]string{"config:set"}, configArgs...), "-a", app)
		shown := append(append([]string{"heroku config:set"}, configShown...), "-a", shellQuote(app))
		steps = append(steps, setupStep{args: args, shown: strings.Join(shown, " ")})
	}
	return steps, skipped, nil
}

// printSetup writes the commands as a script to review and paste.
func printSetup(w io.Writer, steps []setupStep) {
	fmt.Fprintln(w, "# Replace each <placeholder> (Grafana Cloud > your stack > Prometheus / Loki > Details),")
	fmt.Fprintln(w, "# then run these commands, or export the GRAFANA_CLOUD_* variables and use --apply.")
	fmt.Fprintln(w, "# The next deploy of each app starts the agent in every dyno.")
	for _, s := range steps {
		fmt.Fprintln(w, s.shown)
	}
}

// defaultBuildpack pins the buildpack URL to the release tag of this binary, when it is a release.
func defaultBuildpack(v string) string {
	if regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(v) {
		return setupBuildpackURL + "#v" + v
	}
	return setupBuildpackURL
}

// lookPathIn finds an executable named file in the directories of path (like exec.LookPath, but
// with the PATH passed in, so tests control it).
func lookPathIn(file, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		candidate := filepath.Join(dir, file)
		if fi, err := os.Stat(candidate); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("%s: %w", file, exec.ErrNotFound)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,#", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellJoin quotes and joins args.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// nonNilEnv returns env, or a lookup that finds nothing when env is nil.
func nonNilEnv(env func(string) string) func(string) string {
	if env == nil {
		return func(string) string { return "" }
	}
	return env
}
