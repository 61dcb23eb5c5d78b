//! gVisor (runsc) isolation backend.
