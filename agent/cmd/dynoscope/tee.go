package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/brainbytesai/dynoscope/agent/internal/config"
	"github.com/brainbytesai/dynoscope/agent/internal/logs"
)

// teeDeadline is how long tee keeps passing bytes after SIGTERM/SIGINT
// before it exits 0: below Heroku's 30 s grace, above the agent's 25 s
// shutdown timeout.
const teeDeadline = 28 * time.Second

// teeCloseTimeout bounds how long tee, at EOF, waits to hand its buffered
// lines to the agent.
const teeCloseTimeout = 2 * time.Second

// cmdTee is `dynoscope tee --stream stdout|stderr`: stdin is copied to
// stdout byte for byte and each line is offered to the running agent over
// DYNOSCOPE_SOCKET without waiting for it. It ignores SIGTERM/SIGINT (the
// app decides when its output ends) and exits at EOF, or teeDeadline after
// the first signal (or ctx's end). It never fails because of the agent; bad
// arguments degrade it to a plain copy (exit 2 at EOF); a broken stdout
// makes it drain stdin and exit 1 at EOF.
func cmdTee(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGPIPE)
	defer signal.Stop(sigs)

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: teeLogLevel(env)}))
	fs := flag.NewFlagSet("tee", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stream := fs.String("stream", "stdout", "stream label of the lines: stdout or stderr")
	deadline := fs.Duration("deadline", teeDeadline, "exit this long after SIGTERM even if input continues")
	code := 0
	if err := fs.Parse(args); err != nil || (*stream != "stdout" && *stream != "stderr") || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dynoscope tee: usage: dynoscope tee --stream stdout|stderr (copying only)\n")
		*stream, code = "", 2
	}

	var tee *logs.Tee
	if *stream != "" {
		maxLine := int64(logs.DefaultMaxLineBytes)
		if v := env("DYNOSCOPE_LOG_MAX_LINE_BYTES"); v != "" {
			var s config.Size
			if err := s.Decode(v); err == nil && s > 0 {
				maxLine = int64(s)
			}
		}
		socket := env("DYNOSCOPE_SOCKET")
		if socket == "" {
			socket = logs.DefaultSocket
		}
		tee = logs.NewTee(logs.TeeOptions{Socket: socket, Stream: *stream, MaxLineBytes: maxLine, Logger: logger})
	}

	copied := make(chan error, 1)
	go func() {
		if tee == nil {
			_, err := copyAll(stdout, stdin)
			copied <- err
			return
		}
		copied <- tee.Copy(stdout, stdin)
	}()

	var hard <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case err := <-copied:
			if tee != nil {
				if lost := tee.Close(time.Now().Add(teeCloseTimeout)); lost > 0 {
					logger.Debug("lines not handed to the agent", "lines", lost)
				}
			}
			if err != nil && code == 0 {
				logger.Warn("tee output", "err", err)
				code = 1
			}
			return code
		case s := <-sigs:
			if s == syscall.SIGPIPE {
				continue // a write error; Copy keeps draining stdin
			}
			if hard == nil {
				hard = time.After(*deadline)
			}
		case <-done:
			done = nil
			if hard == nil {
				hard = time.After(*deadline)
			}
		case <-hard:
			logger.Warn("input still open at the tee deadline, exiting")
			return code
		}
	}
}

// copyAll is io.Copy that keeps reading src after a write error.
func copyAll(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	var werr error
	for {
		k, err := src.Read(buf)
		if k > 0 && werr == nil {
			_, werr = dst.Write(buf[:k])
			n += int64(k)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, werr
			}
			return n, err
		}
	}
}

func teeLogLevel(env func(string) string) slog.Level {
	switch strings.ToLower(env("DYNOSCOPE_AGENT_LOG_LEVEL")) {
	case "debug":
		return slog.LevelDebug
	case "error":
		return slog.LevelError
	}
	return slog.LevelWarn
}

// teeCommand adapts cmdTee to the command table of main.go.
func teeCommand(ctx context.Context, args []string, environ []string, io stdio) int {
	return cmdTee(ctx, args, getenvFrom(environ), io.in, io.out, io.errOut)
}
