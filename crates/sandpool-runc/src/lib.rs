//! runc isolation backend (weaker: shared kernel).
