package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/logs"
	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

// syncBuffer collects output that is written and read at once.
type syncBuffer = testsupport.Buffer

func teeEnv(socket string) func(string) string {
	return func(k string) string {
		if k == "DYNOSCOPE_SOCKET" {
			return socket
		}
		return ""
	}
}

func shortSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dtee")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "d.sock")
}

func TestTeeExactWithoutAgent(t *testing.T) {
	in := make([]byte, 4<<20)
	_, err := rand.Read(in)
	require.NoError(t, err)
	in = append(in, "\nlast line without newline"...)
	var out, errOut bytes.Buffer
	code := cmdTee(context.Background(), []string{"--stream", "stdout"}, teeEnv(shortSocket(t)), bytes.NewReader(in), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.True(t, bytes.Equal(in, out.Bytes()))
}

func TestTeeShipsToAgent(t *testing.T) {
	socket := shortSocket(t)
	var dry syncBuffer
	p, err := logs.NewPipeline(logs.Options{DryRun: &dry, Labels: map[string]string{"app": "demo"}}, nil, nil)
	require.NoError(t, err)
	p.Start(context.Background())
	go p.ServeSocket(context.Background(), socket)
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 5*time.Second, 5*time.Millisecond)

	in := "hello from the app\nERROR: boom\npartial"
	var out bytes.Buffer
	code := cmdTee(context.Background(), []string{"--stream", "stderr"}, teeEnv(socket), strings.NewReader(in), &out, io.Discard)
	require.Equal(t, 0, code)
	require.Equal(t, in, out.String())
	require.Eventually(t, func() bool { return p.Status().LinesRead == 3 }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Shutdown(ctx)
	require.Contains(t, dry.String(), `level="error", service_name="demo", stream="stderr"} "ERROR: boom"`)
	require.Contains(t, dry.String(), `"partial"`)
}

func TestTeeBadArgsStillCopies(t *testing.T) {
	var out, errOut bytes.Buffer
	code := cmdTee(context.Background(), []string{"--stream", "bogus"}, teeEnv(shortSocket(t)), strings.NewReader("a\nb"), &out, &errOut)
	require.Equal(t, 2, code)
	require.Equal(t, "a\nb", out.String())
	require.Contains(t, errOut.String(), "usage")
}

// TestTeeIgnoresSIGTERM: after SIGTERM the tee keeps passing bytes and
// exits 0 at EOF.
func TestTeeIgnoresSIGTERM(t *testing.T) {
	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cmdTee(context.Background(), []string{"--stream", "stdout"}, teeEnv(shortSocket(t)), pr, &out, io.Discard)
	}()
	_, err := pw.Write([]byte("before\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return out.String() == "before\n" }, 5*time.Second, time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	_, err = pw.Write([]byte("after SIGTERM\n"))
	require.NoError(t, err)
	pw.Close()
	require.Equal(t, 0, <-done)
	require.Equal(t, "before\nafter SIGTERM\n", out.String())
}

// TestTeeHardDeadline: input that never ends after the shutdown signal is
// abandoned at the deadline, with exit 0.
func TestTeeHardDeadline(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cmdTee(ctx, []string{"--stream", "stdout", "--deadline", "50ms"}, teeEnv(shortSocket(t)), pr, io.Discard, io.Discard)
	}()
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(5 * time.Second):
		t.Fatal("tee did not exit at its deadline")
	}
}

// TestTeeAgentKilledMidStream: the agent goes away while the app writes;
// the tee passes everything through and exits 0 at EOF.
func TestTeeAgentKilledMidStream(t *testing.T) {
	socket := shortSocket(t)
	var dry syncBuffer
	p, err := logs.NewPipeline(logs.Options{DryRun: &dry, Labels: map[string]string{"app": "demo"}}, nil, nil)
	require.NoError(t, err)
	p.Start(context.Background())
	go p.ServeSocket(context.Background(), socket)
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 5*time.Second, 5*time.Millisecond)

	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cmdTee(context.Background(), []string{"--stream", "stdout"}, teeEnv(socket), pr, &out, io.Discard)
	}()
	var want strings.Builder
	write := func(s string) {
		want.WriteString(s)
		_, err := pw.Write([]byte(s))
		require.NoError(t, err)
	}
	write("shipped line\n")
	require.Eventually(t, func() bool { return strings.Contains(dry.String(), "shipped line") }, 5*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Shutdown(ctx) // the agent is gone: socket closed, connection cut
	for i := range 5000 {
		write(strings.Repeat("x", i%300) + "\n")
	}
	write("no newline at the end")
	pw.Close()
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("tee did not exit at EOF")
	}
	require.Equal(t, want.String(), out.String())
}
