// Command alertlog is the local stack's Alertmanager receiver: a webhook that
// needs no account. It prints every notification it receives as one JSON line
// per alert on stdout (docker-compose logs -f alert-log), with the receiver
// taken from the request path (/pager, /chat, /chat-staging), so the local
// stack shows which route an alert took.
//
// Environment:
//
//	PORT  listen port (default 8080)
package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// maxBody bounds a notification's size.
const maxBody = 1 << 20

// notification is the part of Alertmanager's webhook payload that is logged.
type notification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
	} `json:"alerts"`
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	srv := &http.Server{Addr: ":" + port, Handler: handler(logger), ReadHeaderTimeout: 5 * time.Second}
	logger.Info("alertlog listening", "addr", srv.Addr)
	if err := srv.ListenAndServe(); err != nil {
		logger.Error("alertlog stopped", "err", err)
		os.Exit(1)
	}
}

func handler(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&n); err != nil {
			logger.Warn("invalid notification", "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		route := strings.Trim(r.URL.Path, "/")
		for _, a := range n.Alerts {
			logger.Info("alert", "route", route, "receiver", n.Receiver, "status", a.Status,
				"labels", a.Labels, "summary", a.Annotations["summary"], "dashboard", a.Annotations["dashboard"],
				"starts_at", a.StartsAt)
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}
