//! The GPU backend (being written).
