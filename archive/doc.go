// Package archive is zcloud's cold-archive core: the streaming pipeline
// (zfs send → age encryption → SHA-256 of plain and stored bytes → parts
// → objstore), its reverse (parts verified before a byte reaches zfs
// receive → decrypt → plain SHA-256), the per-dataset manifest and chain
// model, cycle rotation rules and restore cost/time estimates. It does no
// Temporal and runs no commands: activities hand it readers and writers.
//
// # Object layout
//
//	<prefix>/<dataset>/manifest.json          current manifest (age-encrypted JSON, STANDARD)
//	<prefix>/<dataset>/manifest.prev.json     the one before the last save
//	<prefix>/<dataset>/<cycle>/<stream>.zfs.age  one object per stream
//
// <cycle> is "c" + the UTC start time (c20260101T000000Z); <stream> is
// "full-<toGUID>" or "incr-<fromGUID>-<toGUID>" in hex, so a retried upload
// of the same stream writes the same key: an interrupted upload is redone
// over the same object, never duplicated.
//
// # Keys
//
// Streams are encrypted to the archive recipients only (the private key is
// kept offline and needed just to restore). The manifest is encrypted to
// the same recipients plus, usually, a host recipient whose identity the
// worker keeps, so the backup host can read its own manifest while a
// restore needs only the store and the offline key.
package archive
