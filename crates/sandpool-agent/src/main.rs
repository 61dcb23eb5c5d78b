//! `sandpool-agent`: the agent executable mounted into every sandbox.

fn main() {
    if let Err(e) = sandpool_agent::run() {
        eprintln!("sandpool-agent: {e}");
        std::process::exit(1);
    }
}
