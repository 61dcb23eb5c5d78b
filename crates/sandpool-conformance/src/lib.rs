//! Cross-backend conformance and adversarial suite, and the sandbox benchmark's parts.
//!
//! Every behaviour in [`behaviours`] is an `async fn(&dyn Backend, &TestEnv)` that runs
//! against the real runtime, the real images and the real agent bundle, asserts the
//! outcome, bounds every wait and destroys every sandbox it creates (also on failure,
//! through [`SandboxGuard`]). `tests/gvisor.rs` and `tests/runc.rs` instantiate them per
//! backend with [`backend_tests!`].

pub mod backends;
pub mod behaviours;
pub mod bench;
mod env;
mod error;
mod guard;
mod harness;
pub mod ops;
pub mod paths;
pub mod setup;

pub use env::{unique_id, ImageRef, TestEnv, CREATE_TIMEOUT, TEMPLATE_TIMEOUT, WARM_MODULES};
pub use error::SetupError;
pub use guard::SandboxGuard;
pub use harness::{harness, Harness};

/// Declares one `#[tokio::test]` per listed behaviour against the named backend
/// (`"gvisor"` or `"runc"`), each calling `behaviours::<name>`.
#[macro_export]
macro_rules! backend_tests {
    ($backend:literal => $($behaviour:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $behaviour() {
            let h = $crate::harness($backend).await;
            $crate::behaviours::$behaviour(h.backend(), h.env()).await;
        }
    )+};
}
