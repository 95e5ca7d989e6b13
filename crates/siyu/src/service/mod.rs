//! Use cases shared by the command line and (later) the HTTP API.

pub mod bench;
pub mod campaigns;
pub mod clv;
pub mod config;
pub mod customers;
pub mod delivery;
pub mod demo;
pub mod dispatch;
pub mod evaluate;
pub mod flows;
pub mod import;
pub mod ingest;
pub mod lifecycle;
pub mod merge;
pub mod overview;
pub mod privacy;
pub mod profiles;
pub mod remind;
pub mod reports;
pub mod rfm;
pub mod segments;
pub mod tokens;
pub mod trigger_bench;
pub mod users;
pub mod wecom;
pub mod weimob;
