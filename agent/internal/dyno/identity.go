// Package dyno knows where the agent runs: the identity labels every
// forwarded sample and log stream carries (app, environment, platform,
// instance, dyno_type), platform detection, and a prometheus.Collector for
// the dyno itself (memory and CPU from cgroup v1/v2 and /proc, start time,
// release info, and the app's health probe).
package dyno

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
)

// Label names of the identity, as in DESIGN.md.
const (
	LabelApp         = "app"
	LabelEnvironment = "environment"
	LabelPlatform    = "platform"
	LabelInstance    = "instance"
	LabelDynoType    = "dyno_type"
)

// DefaultDynoType is the dyno_type off Heroku, unless DYNOSCOPE_LABELS sets one.
const DefaultDynoType = "web"

// oneOffTypes are Heroku dyno types whose instance is the type alone, so
// short-lived dynos (run.4711, scheduler.1234, release.99) do not create new
// series each time.
var oneOffTypes = map[string]bool{"run": true, "scheduler": true, "release": true}

// Identity is where the agent runs. It is a value; safe for concurrent reads.
type Identity struct {
	App         string
	Environment string
	Platform    string // heroku, docker or local
	Instance    string // web.1 on Heroku (or HEROKU_DYNO_ID), run for one-offs, else the hostname
	DynoType    string // web, worker, run, ...
}

// Labels returns the identity as the labels app, environment, platform,
// instance and dyno_type (a new map each call).
func (id Identity) Labels() map[string]string {
	return map[string]string{
		LabelApp:         id.App,
		LabelEnvironment: id.Environment,
		LabelPlatform:    id.Platform,
		LabelInstance:    id.Instance,
		LabelDynoType:    id.DynoType,
	}
}

// Identify works out the identity from the config, the environment (DYNO,
// HEROKU_DYNO_ID) and the machine (container markers under /, the hostname).
func Identify(cfg *config.Config, getenv func(string) string) Identity {
	return identify(cfg, getenv, "/", os.Hostname)
}

func identify(cfg *config.Config, getenv func(string) string, root string, hostname func() (string, error)) Identity {
	id := Identity{App: cfg.App, Environment: cfg.Environment, Platform: cfg.Platform}
	if id.Platform == "" {
		id.Platform = DetectPlatform(getenv, root)
	}
	if dyno := getenv("DYNO"); dyno != "" {
		typ, _, _ := strings.Cut(dyno, ".")
		id.DynoType = typ
		switch {
		case oneOffTypes[typ]:
			id.Instance = typ
		case cfg.Instance == config.InstanceDynoID && getenv("HEROKU_DYNO_ID") != "":
			id.Instance = getenv("HEROKU_DYNO_ID")
		default:
			id.Instance = dyno
		}
	} else {
		id.DynoType = DefaultDynoType
		if h, err := hostname(); err == nil && h != "" {
			id.Instance = h
		} else {
			id.Instance = "unknown"
		}
	}
	if t := cfg.Labels[LabelDynoType]; t != "" {
		id.DynoType = t
	}
	return id
}

// DetectPlatform returns heroku when DYNO is set, docker when root shows a
// container (/.dockerenv, /run/.containerenv, or /proc/1/cgroup naming
// docker, containerd or kubepods), else local. root is "/" outside tests.
func DetectPlatform(getenv func(string) string, root string) string {
	if getenv("DYNO") != "" {
		return config.PlatformHeroku
	}
	for _, marker := range []string{".dockerenv", "run/.containerenv"} {
		if _, err := os.Stat(filepath.Join(root, marker)); err == nil {
			return config.PlatformDocker
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "proc/1/cgroup")); err == nil {
		for _, s := range []string{"docker", "containerd", "kubepods"} {
			if bytes.Contains(b, []byte(s)) {
				return config.PlatformDocker
			}
		}
	}
	return config.PlatformLocal
}
