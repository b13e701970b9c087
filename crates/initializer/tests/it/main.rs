//! Integration tests of the initializer, against a fresh database through
//! PgBouncer.

mod seeding;
