package retention

// Kind is a family of calendar periods a policy keeps snapshots for.
type Kind string

// The kinds, finest first; Kinds lists them in this order.
const (
	Frequent Kind = "frequent"
	Hourly   Kind = "hourly"
	Midday   Kind = "midday"
	Daily    Kind = "daily"
	Weekly   Kind = "weekly"
	Monthly  Kind = "monthly"
	Biannual Kind = "biannual"
	Annual   Kind = "annual"
)

// Kinds returns every kind, finest first, so reasons and reports have a fixed order.
func Kinds() []Kind {
	return []Kind{Frequent, Hourly, Midday, Daily, Weekly, Monthly, Biannual, Annual}
}
