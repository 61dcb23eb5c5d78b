//! Runs pools: drives the pool core with real sandboxes, images and the store.
