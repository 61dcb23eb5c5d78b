//! The agent that runs inside every sandbox: Python driver host, shell, confined file operations.
