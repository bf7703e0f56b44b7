//! The `campana` server as a library: the binary (`main.rs`), the integration tests and the
//! benchmarks use the same modules.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod cpu_pool;
pub mod demo;
pub mod dialer;
pub mod dnc_import;
pub mod dnc_lists;
pub mod dnc_registry;
pub mod explain;
pub mod import_job;
pub mod state;
pub mod web;
pub mod webhooks;
