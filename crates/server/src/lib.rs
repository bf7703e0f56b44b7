//! The `campana` server as a library: the binary (`main.rs`), the integration tests and the
//! benchmarks use the same modules.

pub mod api;
pub mod auth;
pub mod config;
pub mod cpu_pool;
pub mod demo;
pub mod dialer;
pub mod dnc_lists;
pub mod dnc_registry;
pub mod explain;
pub mod import_job;
#[cfg(test)]
mod layers;
pub mod router;
pub mod service;
pub mod state;
pub mod upload;
pub mod web;
pub mod webhooks;
