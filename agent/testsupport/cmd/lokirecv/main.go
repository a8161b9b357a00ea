// Command lokirecv is the loopback Loki receiver as a process, for tests
// that are not Go (the buildpack tests): it listens on 127.0.0.1, prints
// its push URL on the first line of stdout, appends every accepted entry
// as a JSON line to -out (if set) and serves them as a JSON array on
// GET /entries, until SIGTERM or SIGINT.
//
//	lokirecv [-addr 127.0.0.1:0] [-out entries.jsonl] [-user U -password P]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/brainbytesai/dynoscope/agent/testsupport"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	out := flag.String("out", "", "file to append accepted entries to, one JSON object a line")
	user := flag.String("user", "", "require this basic auth user")
	password := flag.String("password", "", "require this basic auth password")
	flag.Parse()

	r, err := testsupport.StartLokiReceiver(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lokirecv:", err)
		os.Exit(1)
	}
	defer r.Close()
	if *user != "" || *password != "" {
		r.RequireBasicAuth(*user, *password)
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lokirecv:", err)
			os.Exit(1)
		}
		defer f.Close()
		var mu sync.Mutex
		enc := json.NewEncoder(f)
		r.OnEntry(func(e testsupport.LokiEntry) {
			mu.Lock()
			defer mu.Unlock()
			enc.Encode(e)
		})
	}
	fmt.Println(r.URL)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
}
