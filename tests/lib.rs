//! End-to-end tests of BigBrotr live in `it/`.
