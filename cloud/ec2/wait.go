package ec2

import (
	"context"
	"fmt"
	"time"
)

// poll calls check every PollInterval until it reports done, fails, or ctx
// ends. Waits are bounded by ctx (the activity's StartToClose timeout).
func (c *Client) poll(ctx context.Context, what string, check func(ctx context.Context) (done bool, progress string, err error)) error {
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		done, progress, err := check(ctx)
		if err != nil || done {
			return err
		}
		if c.opts.OnPoll != nil {
			c.opts.OnPoll(ctx, what+": "+progress)
		}
		select {
		case <-ctx.Done():
			return &Error{Op: "wait for " + what, Kind: KindRetryable, Message: fmt.Sprintf("gave up at %q", progress), Err: ctx.Err()}
		case <-t.C:
		}
	}
}
