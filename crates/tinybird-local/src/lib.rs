//! Tinybird-compatible local server.
