//! What a commit guarantees.

/// What a commit guarantees (SQLite's `synchronous` setting, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `FULL` (the default): the WAL is flushed to disk at every commit that admits, records,
    /// replays or purges, so a committed admission survives the process being killed **and** the
    /// machine losing power. Commits of nothing but claims and lease releases are not flushed
    /// (a lease lost to a power failure only makes the delivery due again); the next flushed
    /// commit flushes them too.
    #[default]
    Full,
    /// `NORMAL`: a committed admission survives the process being killed (SIGKILL, OOM), but
    /// the last commits before a power loss or kernel crash may be rolled back.
    Normal,
}
