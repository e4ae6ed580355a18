package main

import (
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// bars shows one progress bar per stage on a terminal.
type bars struct {
	p   *mpb.Progress
	mu  sync.Mutex
	bar *mpb.Bar
}

// newBars draws on w, which the caller has checked is a terminal.
func newBars(w io.Writer) *bars {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(100))}
}

func (b *bars) Stage(name string, total int64) {
	bar := b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace}), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)),
	)
	b.mu.Lock()
	b.bar = bar
	b.mu.Unlock()
}

func (b *bars) Add(n int64) {
	b.mu.Lock()
	bar := b.bar
	b.mu.Unlock()
	if bar != nil {
		bar.IncrInt64(n)
	}
}

func (b *bars) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		// Complete the bar at what was done; an aborted stage shows where it stopped.
		b.bar.SetTotal(-1, true)
		b.bar = nil
	}
}

// Wait flushes the bars before other output is printed.
func (b *bars) Wait() { b.p.Wait() }
