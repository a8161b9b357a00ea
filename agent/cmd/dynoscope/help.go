package main

import (
	"fmt"
	"io"
)

// commandHelp prints what `dynoscope COMMAND --help` adds to the usage line.
func commandHelp(w io.Writer, name string) {
	if text, ok := helpTexts[name]; ok {
		fmt.Fprint(w, "\n"+text)
	}
}

var helpTexts = map[string]string{
	"agent": `Scrapes the targets (DYNOSCOPE_SCRAPE_TARGETS, default the app's $PORT/metrics)
every DYNOSCOPE_SCRAPE_INTERVAL and remote-writes the samples to
GRAFANA_CLOUD_PROMETHEUS_URL; ships the lines of connected "dynoscope tee"
processes (socket DYNOSCOPE_SOCKET) and of DYNOSCOPE_LOG_FILES to
GRAFANA_CLOUD_LOKI_URL. On SIGTERM it stops scraping, reads the tees until
they close, and flushes within DYNOSCOPE_SHUTDOWN_TIMEOUT (25s). Exits 0; a
bad configuration turns forwarding off, never the app.
`,
	"run": `CMD's stdin is dynoscope's; its stdout and stderr are passed through byte
for byte and shipped to Loki. CMD's exit status is returned (128+N when it
was killed by signal N; 127 when it can't be found). SIGTERM and SIGINT are
forwarded to CMD only when dynoscope is PID 1 (a container's entrypoint);
elsewhere CMD gets its own, from Heroku or the terminal.
`,
	"tee": `As dependable as cat: keeps copying when the agent is absent, slow or
restarting, ignores SIGTERM, exits at EOF (at the latest 28s after SIGTERM),
and never fails because of the agent. The buildpack's launcher pipes the
app's output through it.
`,
	"check": `Prints the configuration (secrets masked), scrapes each target once, probes
the app's health, sends one test sample to Prometheus and one test line to
Loki, and prints a hint for each failure. In a one-off dyno (heroku run) there
is no app to scrape: only the endpoints and credentials are tested.
`,
	"config": `Prints every config var with its effective value and where it came from
(set, default, derived); secrets show as ****. Warnings and invalid values go
to stderr; an invalid configuration exits 1.
`,
}
