//! What the gvisor integration tests share: the workspace test kit.

#![allow(unused_imports)]

pub use sandpool_testkit::*;
