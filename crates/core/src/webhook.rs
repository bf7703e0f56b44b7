//! Webhook subscriptions: which events Campana announces, and where (Standard Webhooks).
//!
//! The delivery itself (signing, retries, the destination guard) lives in the server; the
//! outbox in the store. This module is the vocabulary and the boundary checks.

use crate::error::{FieldError, Problems};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum! {
    /// What a webhook announces (the payload's `type`).
    pub enum EventType {
        /// A call attempt ended (any result), with its timestamps, agent and result.
        CallEnded = "call.ended",
        /// An agent saved a disposition (and notes) on a call.
        DispositionSaved = "disposition.saved",
        /// A record reached a final status (completed: no more calls to that number).
        RecordCompleted = "record.completed",
        /// A campaign was started, paused, stopped, completed, ...
        CampaignStateChanged = "campaign.state_changed",
        /// A contact-list import finished (done, failed or cancelled).
        ImportFinished = "import.finished",
    }
}

/// Longest destination URL accepted.
pub const URL_MAX_LEN: usize = 2048;

/// A webhook subscription as created or replaced through the API or the console.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    /// `https://` (or `http://`) address the events are POSTed to.
    #[schema(min_length = 8, max_length = 2048, example = "https://crm.example.com/campana/webhooks")]
    pub url: String,
    /// The events sent to this endpoint; empty means every event.
    #[serde(default)]
    pub event_types: Vec<EventType>,
    /// A disabled endpoint keeps its deliveries pending until it is enabled again.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl WebhookEndpointInput {
    /// Does this endpoint take events of `t`?
    pub fn wants(types: &[EventType], t: EventType) -> bool {
        types.is_empty() || types.contains(&t)
    }
}

/// Checks a destination address: an absolute `http`/`https` URL with a host, no credentials,
/// no fragment. Whether its host may be reached (private ranges) is decided at delivery.
pub fn check_url(raw: &str) -> Result<url::Url, FieldError> {
    let bad = |why: &str| FieldError::new("url", format!("'{raw}' {why}"));
    if raw.len() > URL_MAX_LEN {
        return Err(FieldError::new("url", format!("is longer than {URL_MAX_LEN} characters")));
    }
    let u = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("must start with https:// (or http://)"));
    }
    if u.host_str().is_none_or(|h| h.is_empty()) {
        return Err(bad("has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not hold a user name or password (the signature authenticates Campana)"));
    }
    if u.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(u)
}

impl crate::error::Validated for WebhookEndpointInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        crate::campaign::check_name(&mut p, "name", &self.name);
        if let Err(e) = check_url(&self.url) {
            p.push(e);
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.event_types {
            p.check(seen.insert(*t), "event_types", || format!("'{t}' is listed twice"));
        }
        p.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Validated;

    fn input(url: &str) -> WebhookEndpointInput {
        WebhookEndpointInput { name: "CRM".into(), url: url.into(), event_types: vec![], enabled: true }
    }

    #[test]
    fn urls_are_checked_at_the_boundary() {
        assert!(input("https://crm.example.com/hook?x=1").validate().is_ok());
        assert!(input("http://127.0.0.1:9000/h").validate().is_ok(), "private ranges are decided at delivery");
        for bad in ["ftp://x.example/h", "crm.example.com/h", "https://user:pw@x.example/h", "https://x.example/h#f", "https://"] {
            let e = input(bad).validate().unwrap_err();
            assert_eq!(e[0].field, "url", "{bad}: {e:?}");
        }
    }

    #[test]
    fn event_types_have_stable_names_and_empty_means_all() {
        assert_eq!(EventType::CallEnded.as_str(), "call.ended");
        assert_eq!("record.completed".parse::<EventType>().unwrap(), EventType::RecordCompleted);
        assert!(WebhookEndpointInput::wants(&[], EventType::ImportFinished));
        assert!(!WebhookEndpointInput::wants(&[EventType::CallEnded], EventType::ImportFinished));
        let mut w = input("https://x.example/h");
        w.event_types = vec![EventType::CallEnded, EventType::CallEnded];
        assert_eq!(w.validate().unwrap_err()[0].field, "event_types");
    }
}
