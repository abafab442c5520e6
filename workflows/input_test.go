package workflows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"zcloud/contract"
)

// A field the input type does not have (here: where the receiver should
// live) is refused, naming the field (e2e/security_test.go starts real
// workflows with such inputs).
func TestUnknownInputFieldIsRefused(t *testing.T) {
	var in ReplicateInput
	if err := json.Unmarshal([]byte(`{"source":"tank/data","target":"b","target_dataset":"bk/data","receiver_path":"/tmp/evil"}`), &in); err != nil {
		t.Fatal(err)
	}
	var ae *temporal.ApplicationError
	err := in.fields.refuse(ReplicateName)
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeNotAllowed || !ae.NonRetryable() ||
		!strings.HasPrefix(ae.Message(), "receiver_path: not allowed;") {
		t.Fatalf("got %v", err)
	}
}

func TestKnownInputFieldsDecodeAsBefore(t *testing.T) {
	var in ReplicateInput
	if err := in.UnmarshalJSON([]byte(`{"Source":"tank/a","target":"b","target_dataset":"x/y","raw":true}`)); err != nil {
		t.Fatal(err)
	}
	if in.Source != "tank/a" || in.Target != "b" || in.TargetDataset != "x/y" || !in.Raw || in.fields.refuse(ReplicateName) != nil {
		t.Fatalf("%+v", in)
	}
}
