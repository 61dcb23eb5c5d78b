//! The HTTP API: Azure dynamic-sessions data plane, auth, OpenAPI.
