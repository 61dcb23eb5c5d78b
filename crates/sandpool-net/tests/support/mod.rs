//! What the network tests share: the workspace test kit and a test "internet".

#![allow(unused_imports)]

pub mod internet;

pub use sandpool_testkit::*;
