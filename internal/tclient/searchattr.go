package tclient

import (
	"context"
	"fmt"
	"sort"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"zcloud/searchattr"
)

// EnsureSearchAttributes registers whichever of zcloud's search attributes
// the namespace lacks (what `temporal operator search-attribute create`
// does; docs/operations.md). The worker calls it at start, so a single-node
// Temporal needs no set-up step; a cluster that refuses the operator API to
// the worker's credentials gets the error, which names the command to run.
func EnsureSearchAttributes(ctx context.Context, cl client.Client, namespace string) (added []string, err error) {
	have, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes: %w (%s)", err, CreateCommand(namespace))
	}
	want := map[string]enumspb.IndexedValueType{}
	for _, d := range searchattr.Definitions() {
		if _, ok := have.GetCustomAttributes()[d.Name]; ok {
			continue
		}
		t, err := enumspb.IndexedValueTypeFromString(d.Type)
		if err != nil {
			return nil, err
		}
		want[d.Name] = t
		added = append(added, d.Name)
	}
	if len(want) == 0 {
		return nil, nil
	}
	sort.Strings(added)
	if _, err := cl.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want}); err != nil {
		return nil, fmt.Errorf("add search attributes %v: %w (%s)", added, err, CreateCommand(namespace))
	}
	return added, nil
}

// CreateCommand is the commands that register the attributes by hand (one
// per type: the CLI takes one --type per call).
func CreateCommand(namespace string) string {
	var types []string
	names := map[string]string{}
	for _, d := range searchattr.Definitions() {
		if _, ok := names[d.Type]; !ok {
			types = append(types, d.Type)
		}
		names[d.Type] += " --name " + d.Name
	}
	s := "register them with:"
	for i, t := range types {
		if i > 0 {
			s += " &&"
		}
		s += " temporal operator search-attribute create --namespace " + namespace + names[t] + " --type " + t
	}
	return s
}
