package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// cmdRun starts CMD as a child with the agent in-process. CMD's stdin is
// ours; its stdout and stderr are passed through byte for byte and offered to
// the log pipeline; its exit status is returned. A bad or missing
// configuration turns forwarding off, never the child.
func cmdRun(ctx context.Context, args []string, environ []string, std stdio) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(std.errOut, "dynoscope run: no command given: use dynoscope run -- CMD [ARGS...]")
		return 2
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	a := startAgent(ctx, environ, std.errOut)
	child := exec.Command(args[0], args[1:]...)
	child.Stdin, child.Env = std.in, environ

	// Our own pipes, not StdoutPipe: exec.Cmd.Wait would close them as soon as
	// the child exits, losing what is still buffered in them.
	var copies sync.WaitGroup
	var pipeEnds []*os.File
	attach := func(stream string, dst io.Writer) io.Writer {
		if !a.capturesLogs() {
			return dst
		}
		r, w, err := os.Pipe()
		if err != nil {
			a.logger.Error("pipe for the app's output; passing it through uncaptured", "stream", stream, "err", err)
			return dst
		}
		pipeEnds = append(pipeEnds, w)
		copies.Add(1)
		go func() {
			defer copies.Done()
			defer r.Close()
			if err := a.passthrough(dst, r, stream); err != nil {
				a.logger.Warn("passthrough ended early", "stream", stream, "err", err)
			}
		}()
		return w
	}
	child.Stdout = attach("stdout", std.out)
	child.Stderr = attach("stderr", std.errOut)

	err := child.Start()
	for _, w := range pipeEnds { // the child has its copies
		w.Close()
	}
	if err != nil {
		fmt.Fprintf(std.errOut, "dynoscope run: start %s: %v\n", args[0], err)
		copies.Wait()
		a.shutdown(time.Now().Add(a.shutdownTimeout()))
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}

	exited := make(chan struct{})
	go func() { _ = child.Wait(); close(exited) }()

	// On Heroku every process of the dyno gets SIGTERM, and in a terminal
	// Ctrl-C reaches the whole process group: the child has its own signal.
	// Only as PID 1 (a container's entrypoint) is ours the only one.
	forward := os.Getpid() == 1
	var deadline time.Time // set by the first signal
	for waiting := true; waiting; {
		select {
		case sig := <-sigs:
			if forward {
				_ = child.Process.Signal(sig)
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(a.shutdownTimeout())
				a.logger.Info("signal received; metrics stop, logs keep reading until the app's output closes",
					"signal", sig.String(), "deadline", a.shutdownTimeout().String())
				a.stopMetrics(deadline)
			}
		case <-exited:
			waiting = false
		}
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(a.shutdownTimeout())
	}

	// A grandchild may hold the output open after the child is gone: wait for
	// the passthrough no longer than the deadline.
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		a.logger.Warn("the app's output is still open after it exited; not waiting for it any longer")
	}
	a.shutdown(deadline)
	return exitCode(child.ProcessState)
}

// exitCode is the child's status as a shell reports it: 128+N for signal N.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
