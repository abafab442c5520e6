// Package staging keeps a file-by-file encrypted copy of a ZFS snapshot in a
// staging directory (a dataset of its own, which then replicates and
// archives like any other): every regular file and symlink of the snapshot
// becomes one age-encrypted file at the same relative path, so a restore
// needs a private key that the backup host never holds.
//
// A first run (Full) walks the snapshot; later runs (Incremental) apply the
// `zfs diff -FH` between the last staged snapshot and the new one. Every
// step is idempotent and a file reaches its staged path only by a rename
// once it is complete, so a run killed anywhere and run again converges to
// a copy of the new snapshot. What happens to each file type is in
// docs/staging.md.
//
// The package does file I/O only; it runs no commands (zfs diff, holds and
// snapshots are the caller's, through zfsexec).
package staging
