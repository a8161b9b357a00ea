package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-multierror"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
)

// cmdConfig prints the effective configuration, secrets masked; warnings
// and errors go to stderr, and an invalid configuration exits 1.
func cmdConfig(_ context.Context, _ []string, environ []string, std stdio) int {
	cfg, warnings, err := config.Load(environ)
	if err := cfg.Print(std.out); err != nil {
		fmt.Fprintf(std.errOut, "dynoscope config: %v\n", err)
		return 1
	}
	return reportConfig(std.errOut, warnings, err)
}

// reportConfig prints warnings and each invalid variable on its own line;
// it returns 1 when the configuration is invalid.
func reportConfig(w io.Writer, warnings []string, err error) int {
	for _, msg := range warnings {
		fmt.Fprintf(w, "warning: %s\n", msg)
	}
	if err == nil {
		return 0
	}
	var me *multierror.Error
	if errors.As(err, &me) {
		for _, e := range me.Errors {
			fmt.Fprintf(w, "error: %v\n", e)
		}
	} else {
		fmt.Fprintf(w, "error: %v\n", err)
	}
	return 1
}
