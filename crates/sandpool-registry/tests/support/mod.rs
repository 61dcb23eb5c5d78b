//! Test support: a real `docker-registry` process, an image builder and the push API.
#![allow(dead_code)]

pub mod image;
pub mod push;
pub mod registry;
pub mod token;
