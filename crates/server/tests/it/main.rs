//! Every integration test of the server in one binary (one link instead of fifteen): each module
//! below was a test binary of its own. Servers are started as child processes (`common::Server`),
//! so tests in different modules share nothing but the machine.

mod account;
mod api;
mod audit;
mod auth;
mod authz_matrix;
mod browser;
mod calling_hours;
mod cli;
mod common;
mod console;
mod contract;
mod dialer;
mod dialer_health;
mod dnc;
mod explain;
mod import;
mod progress;
mod sip;
mod webhooks;
