//! The service layer: every command and query the product offers, once, for both front-ends.
//!
//! Each function takes the caller (a [`Principal`], or an [`Actor`] for changes), typed inputs,
//! and returns a typed result or a [`ServiceError`]. The JSON API (`crate::api`) and the web
//! console (`crate::web`) are thin adapters over it: they extract the request, call one function
//! here, and render the answer (problem+json, or an HTML page). Neither imports the other, and
//! nothing here imports either (checked by `crate::layers`'s test).
//!
//! - [`audit`]: every change to stored objects, written with who made it, before and after, and
//!   told to the live dialer.
//! - [`principal`]: who the caller is and the rules of what they may see and grant.
//! - [`account`]: sign-in, passwords, sessions and API tokens.
//! - [`agent`]: what an agent does in the dialer (state, preview, hang-up, disposition, tags)
//!   and the live views of a campaign (progress, agents).
//! - [`campaigns`], [`catalog`], [`users`]: stored objects, with the rules of who sees and
//!   changes which.
//! - [`imports`], [`dnc_import`], [`audit_log`]: imports of contact and DNC files, the audit log
//!   as a query.

pub mod account;
pub mod agent;
pub mod audit;
pub mod audit_log;
pub mod campaigns;
pub mod catalog;
pub mod dnc_import;
pub mod error;
pub mod imports;
pub mod principal;
pub mod users;

pub use audit::{Actor, Via};
pub use error::{ServiceError, ServiceResult};
pub use principal::Principal;

/// Why a text from a client is refused: NUL and the other control characters (C0, DEL, C1)
/// make no sense in any field Campana stores, and PostgreSQL cannot store NUL at all. Tab and
/// line breaks are text (notes, scripts, descriptions). Checked once at the boundary: in JSON
/// bodies, console forms (the web gate), paths and query strings.
pub fn bad_text(s: &str) -> Option<String> {
    let c = s.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    Some(format!("contains the control character U+{:04X}, which is not allowed", c as u32))
}

/// A page request: `limit` 1 to [`campana_store::MAX_PAGE`] (the store's default when absent)
/// and the `next_cursor` of the previous page.
pub fn page_params(limit: Option<u32>, cursor: Option<&str>) -> ServiceResult<campana_store::PageParams> {
    let cursor = cursor.map(campana_store::PageParams::parse_cursor).transpose()?;
    if let Some(l) = limit {
        if !(1..=campana_store::MAX_PAGE).contains(&l) {
            return Err(ServiceError::field("limit", format!("{l} is outside 1..={}", campana_store::MAX_PAGE)));
        }
    }
    Ok(campana_store::PageParams { limit, cursor })
}

/// The most members one bulk upsert (or bulk DNC change) may carry.
pub const MAX_BULK_MEMBERS: usize = 10_000;
