#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # Layout
//!
//! Nothing yet: the `Service` contract and the `LoopService` come with the service runtime.
