//! Mapping of SIP final responses to Campana's [`CallResult`] catalogue.
//!
//! | SIP final response                                   | `CallResult`       |
//! |------------------------------------------------------|--------------------|
//! | 2xx                                                  | `answered`         |
//! | 486 Busy Here, 600 Busy Everywhere, 603 Decline      | `busy`             |
//! | 480 Temporarily Unavailable, 408 Request Timeout     | `no_answer`        |
//! | no response at all (Timer B; rsipstack's own 408)    | `network_failure` (in the call task) |
//! | 487 Request Terminated after our ring-timeout CANCEL | `no_answer`        |
//! | ring timeout with no response at all before it (not even 100), then 487 or nothing | `network_failure` |
//! | 487 after the engine's `HangUp` (our CANCEL)          | `cancelled`        |
//! | 487 not caused by us                                 | `no_answer`        |
//! | 404, 410, 484, 485, 604, 416                         | `sit_invalid`      |
//! | 500, 502, 503, 504, any other 5xx                    | `network_failure`  |
//! | no response at all (Timer B / transport error)       | `network_failure`  |
//! | 401/407 still after our digest answer, 403           | `dial_error`       |
//! | 488, 606 (no common codec), 3xx, any other 4xx/6xx   | `dial_error`       |
//!
//! `dial_error` means "our trunk or configuration is wrong", so the engine should not retry
//! the number as if the customer had not answered.

use campana_core::record::CallResult;

/// Why Campana sent a CANCEL, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The ring timeout expired.
    RingTimeout,
    /// The engine asked for it (`TelephonyCommand::HangUp` before answer).
    HangUp,
    /// The ring timeout expired before the trunk sent any response at all (not even 100
    /// Trying): the network failed, not the called party.
    RingTimeoutNoResponse,
}

/// Maps a final response status code to a call result. `cancelled` tells whether (and why)
/// Campana cancelled the INVITE before this response came.
pub fn map_final_status(status_code: u16, cancelled: Option<CancelReason>) -> CallResult {
    match status_code {
        200..=299 => CallResult::Answered,
        487 => match cancelled {
            Some(CancelReason::HangUp) => CallResult::Cancelled,
            Some(CancelReason::RingTimeout) | None => CallResult::NoAnswer,
            Some(CancelReason::RingTimeoutNoResponse) => CallResult::NetworkFailure,
        },
        // A CANCEL that crossed with another final response: the CANCEL decides.
        _ if cancelled == Some(CancelReason::HangUp) => CallResult::Cancelled,
        486 | 600 | 603 => CallResult::Busy,
        480 | 408 => CallResult::NoAnswer,
        404 | 410 | 484 | 485 | 604 | 416 => CallResult::SitInvalid,
        500..=599 => CallResult::NetworkFailure,
        _ if matches!(cancelled, Some(CancelReason::RingTimeout | CancelReason::RingTimeoutNoResponse)) => CallResult::NoAnswer,
        _ => CallResult::DialError,
    }
}

/// The call result when no final response came from the far end at all (Timer B, which
/// rsipstack reports as a 408 of its own, or a transport error): the network failed, unless
/// Campana had cancelled the INVITE, whose reason then decides as for a 487.
pub fn map_no_response(cancelled: Option<CancelReason>) -> CallResult {
    match cancelled {
        Some(reason) => map_final_status(487, Some(reason)),
        None => CallResult::NetworkFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (200, None, CallResult::Answered),
            (486, None, CallResult::Busy),
            (600, None, CallResult::Busy),
            (603, None, CallResult::Busy),
            (480, None, CallResult::NoAnswer),
            (408, None, CallResult::NoAnswer),
            (487, Some(CancelReason::RingTimeout), CallResult::NoAnswer),
            (487, Some(CancelReason::HangUp), CallResult::Cancelled),
            (487, None, CallResult::NoAnswer),
            (404, None, CallResult::SitInvalid),
            (410, None, CallResult::SitInvalid),
            (484, None, CallResult::SitInvalid),
            (604, None, CallResult::SitInvalid),
            (503, None, CallResult::NetworkFailure),
            (502, None, CallResult::NetworkFailure),
            (500, None, CallResult::NetworkFailure),
            (504, None, CallResult::NetworkFailure),
            (407, None, CallResult::DialError),
            (403, None, CallResult::DialError),
            (488, None, CallResult::DialError),
            (302, None, CallResult::DialError),
            (486, Some(CancelReason::HangUp), CallResult::Cancelled),
        ];
        for (code, cancelled, want) in cases {
            assert_eq!(map_final_status(code, cancelled), want, "status {code} cancelled {cancelled:?}");
        }
        assert_eq!(map_no_response(None), CallResult::NetworkFailure);
        assert_eq!(map_no_response(Some(CancelReason::RingTimeout)), CallResult::NoAnswer);
        assert_eq!(map_no_response(Some(CancelReason::HangUp)), CallResult::Cancelled);
        // A trunk silent until the ring timeout is a network failure, not the customer's no answer.
        assert_eq!(map_no_response(Some(CancelReason::RingTimeoutNoResponse)), CallResult::NetworkFailure);
        assert_eq!(map_final_status(487, Some(CancelReason::RingTimeoutNoResponse)), CallResult::NetworkFailure);
        assert_eq!(map_final_status(486, Some(CancelReason::RingTimeoutNoResponse)), CallResult::Busy);
    }
}
