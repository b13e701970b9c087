#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # Layout
//!
//! Nothing yet: the pool, its statistics and its error type come with the archive core.
