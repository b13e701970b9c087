//! The `bigbrotr` binary run as a child process, as an operator or a
//! service manager runs it: exit codes, signals, what it prints.

mod config_reference;
mod db_init;
mod endpoint;
mod new_implementation;
mod run_command;
mod support;
