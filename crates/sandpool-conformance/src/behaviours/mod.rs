//! The behaviours every backend must show, each an `async fn(&dyn Backend, &TestEnv)`
//! that asserts the outcome, bounds every wait and destroys what it creates.

mod execution;
mod files;
mod isolation;
mod resources;
mod restore;

pub use execution::*;
pub use files::*;
pub use isolation::*;
pub use resources::*;
pub use restore::*;
