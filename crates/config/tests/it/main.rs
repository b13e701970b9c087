//! Integration tests of `bigbrotr-config`, in one test binary.

mod shipped;
