//! What the runc integration tests share: the workspace test kit.

#![allow(unused_imports)]

pub use sandpool_testkit::*;
