//! Tinybird SQL template language.
