//! What the network tests share: the workspace test kit, with its test "internet".

#![allow(unused_imports)]

pub use sandpool_testkit::*;
