//! Embedded SQLite state: pools, sessions, executions, keys.
