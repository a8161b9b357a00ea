package scrape

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/brainbytesai/dynoscope/agent/internal/series"
)

// With a sink (as in run), a big page reaches it in chunks of appendChunk,
// in order, and the whole is what a scrape without a sink returns.
func TestScrapeHandsChunksToSink(t *testing.T) {
	body := demoPage(4500)
	want := render(pageSamples(t, body, ctText))

	rec := &recorder{}
	l := testLoop(t, &bodySource{body: body, contentType: ctText})
	l.sink = rec
	for range 2 { // the second scrape reuses the series
		rec.batches = nil
		res, err := l.scrape(context.Background())
		require.NoError(t, err)
		require.Equal(t, 4500, res.Series)
		batches := rec.all()
		require.Len(t, batches, 2)
		var all []series.Sample
		for _, b := range batches {
			require.Len(t, b, appendChunk)
			all = append(all, b...)
		}
		all = append(all, res.Samples...)
		require.Len(t, all, 4503)
		require.Equal(t, want, render(all))
	}
}
