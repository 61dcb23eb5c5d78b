//! The `sandpool` binary: the service, its CLI, and (hidden) the in-sandbox agent.

fn main() -> anyhow::Result<()> {
    Ok(())
}
