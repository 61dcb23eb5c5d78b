//! Pool core: ready/allocated/cooldown state machine without IO.
