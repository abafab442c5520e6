// Package searchattr names the custom search attributes zcloud sets on
// every workflow it starts (dataset, target, pool, kind), so that the Web
// UI's workflow list, `temporal workflow list --query` and the visibility
// API can filter zcloud's jobs, and derives each job's one-line summary.
// It imports only the SDK's temporal package: workflows use it too.
package searchattr

import (
	"strings"

	"go.temporal.io/sdk/temporal"
)

// The attributes. Dataset is a list: a session replicates several, and
// `ZcloudDataset = 'tank/a'` matches a run whose list holds tank/a.
var (
	Dataset = temporal.NewSearchAttributeKeyKeywordList("ZcloudDataset")
	Target  = temporal.NewSearchAttributeKeyKeyword("ZcloudTarget")
	Pool    = temporal.NewSearchAttributeKeyKeyword("ZcloudPool")
	Kind    = temporal.NewSearchAttributeKeyKeyword("ZcloudKind")
)

// Definition is one attribute as `temporal operator search-attribute
// create` and `temporal server start-dev --search-attribute` spell it.
type Definition struct {
	Name string // e.g. ZcloudDataset
	Type string // Keyword or KeywordList
}

// Definitions lists every attribute zcloud sets; a Temporal namespace must
// have them all before zcloud can start a workflow there.
func Definitions() []Definition {
	return []Definition{
		{Dataset.GetName(), "KeywordList"},
		{Target.GetName(), "Keyword"},
		{Pool.GetName(), "Keyword"},
		{Kind.GetName(), "Keyword"},
	}
}

// DevServerFlags are the arguments that register the attributes on a
// `temporal server start-dev`.
func DevServerFlags() []string {
	var out []string
	for _, d := range Definitions() {
		out = append(out, "--search-attribute", d.Name+"="+d.Type)
	}
	return out
}

// Kinds of job (the ZcloudKind values, and the metrics' kind label).
const (
	KindReplicate = "replicate"
	KindSession   = "session"
	KindArchive   = "archive"
	KindRestore   = "restore"
	KindDrill     = "drill" // archive verify, the restore drill
	KindScrub     = "scrub"
	KindGrow      = "grow"
	KindPool      = "pool" // create, destroy
	KindSnapshot  = "snapshot"
	KindPrune     = "prune"
	KindPlan      = "plan" // dry runs: policy and restore plans
	KindStaging   = "staging"
	KindCatalog   = "catalog" // the overview's read of every tier
)

// Job is what one workflow run works on.
type Job struct {
	Kind     string
	Datasets []string
	Target   string // a configured target, or "archive"
	Pool     string
}

// Attributes are the job's search attributes (empty ones left out).
func (j Job) Attributes() temporal.SearchAttributes {
	var u []temporal.SearchAttributeUpdate
	if j.Kind != "" {
		u = append(u, Kind.ValueSet(j.Kind))
	}
	if len(j.Datasets) > 0 {
		u = append(u, Dataset.ValueSet(j.Datasets))
	}
	if j.Target != "" {
		u = append(u, Target.ValueSet(j.Target))
	}
	if j.Pool != "" {
		u = append(u, Pool.ValueSet(j.Pool))
	}
	return temporal.NewSearchAttributes(u...)
}

// Summary is the one line the Web UI shows for the run, e.g.
// "replicate tank/data to backup1".
func (j Job) Summary() string {
	parts := []string{j.Kind}
	if len(j.Datasets) > 0 {
		parts = append(parts, strings.Join(j.Datasets, ", "))
	}
	if j.Target != "" {
		parts = append(parts, "to "+j.Target)
	}
	if j.Pool != "" {
		parts = append(parts, "pool "+j.Pool)
	}
	return strings.Join(parts, " ")
}

// FromAttributes reads a job back from a run's attributes (a run started
// without them gives the zero Job).
func FromAttributes(sa temporal.SearchAttributes) Job {
	var j Job
	j.Kind, _ = sa.GetKeyword(Kind)
	j.Datasets, _ = sa.GetKeywordList(Dataset)
	j.Target, _ = sa.GetKeyword(Target)
	j.Pool, _ = sa.GetKeyword(Pool)
	return j
}
