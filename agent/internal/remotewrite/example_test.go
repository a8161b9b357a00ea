package remotewrite_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brainbytesai/dynoscope/agent/internal/remotewrite"
	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// How main wires the stage: one Metrics (its Dropped vector is given to the
// scrape stage as well), Run in the background, Shutdown under the
// SIGTERM deadline. Dry run here, so the batch is printed.
func Example() {
	reg := prometheus.NewRegistry()
	metrics := remotewrite.NewMetrics(reg) // scrape.Options{Dropped: metrics.Dropped}
	w, err := remotewrite.New(remotewrite.Options{
		DryRun:    os.Stdout, // or URL, User, Password for Grafana Cloud
		UserAgent: "dynoscope/1.0.0",
		Now:       func() time.Time { return time.UnixMilli(1764763200000) },
	}, slog.New(slog.DiscardHandler), metrics)
	if err != nil {
		fmt.Println(err)
		return
	}
	go w.Run(context.Background())

	w.Append([]series.Sample{{
		Labels: series.Labels{{Name: "__name__", Value: "up"}, {Name: "app", Value: "shop"}, {Name: "instance", Value: "web.1"}, {Name: "job", Value: "app"}},
		T:      1764763200000,
		V:      1,
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	sum := w.Shutdown(ctx)
	fmt.Println("sent", sum.Sent, "dropped", sum.DroppedTotal())
	// Output:
	// up{app="shop",instance="web.1",job="app"} 1 1764763200000
	// sent 1 dropped 0
}
