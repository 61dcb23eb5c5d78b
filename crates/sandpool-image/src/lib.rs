//! Reproducible, content-addressed sandbox images built from Debian packages and PyPI.
