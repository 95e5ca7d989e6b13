//! The `siyu` binary's library: the command line and the use cases it shares with the
//! HTTP API, kept in a library so tests can drive them in process.

pub mod cli;
pub mod fastcsv;
pub mod http;
pub mod log;
pub mod service;
pub mod wording;
