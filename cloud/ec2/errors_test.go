package ec2

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func TestClassify(t *testing.T) {
	cases := map[string]Kind{
		"InsufficientInstanceCapacity": KindCapacity,
		"SpotMaxPriceTooLow":           KindCapacity,
		"InvalidAMIID.NotFound":        KindPermanent,
		"InvalidSubnetID.NotFound":     KindPermanent,
		"UnauthorizedOperation":        KindPermanent,
		"InvalidInstanceID.NotFound":   KindNotFound,
		"InvalidVolume.NotFound":       KindNotFound,
		"RequestLimitExceeded":         KindRetryable,
		"IncorrectState":               KindRetryable,
		"SomethingNew":                 KindRetryable,
	}
	for code, want := range cases {
		err := classify("op", fmt.Errorf("wrapped: %w", &smithy.GenericAPIError{Code: code, Message: "m"}))
		var e *Error
		if !errors.As(err, &e) || e.Kind != want || e.Code != code {
			t.Errorf("%s: %v, want %s", code, err, want)
		}
		if e.Retryable() != (want == KindRetryable || want == KindCapacity) {
			t.Errorf("%s: Retryable %v", code, e.Retryable())
		}
	}
	if !IsRetryable(classify("op", context.DeadlineExceeded)) || !IsRetryable(errors.New("network")) {
		t.Error("non-API errors must be retryable")
	}
	if classify("op", nil) != nil {
		t.Error("nil error classified")
	}
}
