package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"zcloud/cloud/ec2/ec2types"
)

// SpotNoticePath is the IMDS path of the notice (relative to meta-data/).
const SpotNoticePath = "spot/instance-action"

// ParseSpotNotice parses the notice document, e.g. what an SSH-run curl of
// http://169.254.169.254/latest/meta-data/spot/instance-action printed.
func ParseSpotNotice(b []byte) (*ec2types.SpotNotice, error) {
	var n ec2types.SpotNotice
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("spot notice: %w", err)
	}
	if n.Action == "" {
		return nil, errors.New("spot notice: no action")
	}
	return &n, nil
}

// SpotInterruption asks the instance metadata service whether a spot
// interruption is scheduled, with IMDSv2 (session token; no v1 fallback).
// It returns nil, nil when there is none (IMDS answers 404). endpoint is
// the IMDS base URL; empty means the real one (http://169.254.169.254), so
// this runs on the instance itself (the receiver agent), or against
// ec2-metadata-mock in tests.
func SpotInterruption(ctx context.Context, endpoint string) (*ec2types.SpotNotice, error) {
	client := imds.New(imds.Options{
		Endpoint:       endpoint,
		EnableFallback: aws.FalseTernary,
	})
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: SpotNoticePath})
	if err != nil {
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("spot notice: %w", err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 64*1024))
	if err != nil {
		return nil, fmt.Errorf("spot notice: %w", err)
	}
	return ParseSpotNotice(b)
}

// WaitSpotInterruption polls every interval until a notice appears (and
// returns it) or ctx ends. Transient IMDS errors are retried; the receiver
// agent runs this beside a transfer to stop cleanly within the 2 minutes.
func WaitSpotInterruption(ctx context.Context, endpoint string, interval time.Duration) (*ec2types.SpotNotice, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		n, err := SpotInterruption(ctx, endpoint)
		if n != nil {
			return n, nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
