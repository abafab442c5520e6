package transfer

import (
	"sync/atomic"
	"time"
)

// Progress is a snapshot for heartbeats: total plaintext bytes so far and the
// rate over the last interval.
type Progress struct {
	Bytes       int64
	BytesPerSec float64
	Elapsed     time.Duration
}

// progressReporter calls fn every interval with the counter's value until
// stop, then once more with the final value.
type progressReporter struct {
	stopc chan struct{}
	done  chan struct{}
}

func startProgress(fn func(Progress), interval time.Duration, counter *atomic.Int64) *progressReporter {
	p := &progressReporter{stopc: make(chan struct{}), done: make(chan struct{})}
	if fn == nil {
		close(p.done)
		return p
	}
	start := time.Now()
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		lastBytes, lastTime := int64(0), start
		report := func(now time.Time) {
			b := counter.Load()
			rate := 0.0
			if dt := now.Sub(lastTime).Seconds(); dt > 0 {
				rate = float64(b-lastBytes) / dt
			}
			fn(Progress{Bytes: b, BytesPerSec: rate, Elapsed: now.Sub(start)})
			lastBytes, lastTime = b, now
		}
		for {
			select {
			case now := <-t.C:
				report(now)
			case <-p.stopc:
				report(time.Now())
				return
			}
		}
	}()
	return p
}

func (p *progressReporter) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}
