//! The engine's rules.
