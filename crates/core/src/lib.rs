//! Campana's domain: the types every other crate speaks, and the rules that need no IO.
//!
//! Invariants kept here (see ARCHITECTURE.md):
//! - Values that cross a boundary are parsed into newtypes ([`PhoneNumber`], [`TimeZone`],
//!   [`LocalTime`], [`Colour`], ids); an invalid value cannot be constructed.
//! - Nothing in this crate performs IO or reads the wall clock: callers pass `now`.

#[macro_use]
mod macros;

pub mod campaign;
pub mod csv_out;
pub mod error;
pub mod ids;
pub mod import;
pub mod phone;
pub mod record;
pub mod settings;
pub mod stored;
pub mod telephony;
pub mod time;
pub mod user;
pub mod webhook;

pub use error::{FieldError, Validated};
pub use ids::*;
pub use phone::{CountryCode, PhoneNumber};
pub use time::{DailyHours, LocalTime, TimeZone, Weekdays};
