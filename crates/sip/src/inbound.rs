//! What Campana answers to a SIP request that comes to it, decided from the request's version
//! and method and whether it belongs to a dialog Campana created (plain data in, decision out,
//! so it is unit-tested and fuzzed without a network; `lib.rs` sends the answers).
//!
//! | request | answer |
//! |---|---|
//! | any version other than `SIP/2.0` | 505 Version Not Supported |
//! | in a dialog: INVITE (re-INVITE), UPDATE, BYE | the dialog's own handling (BYE 200, offers answered or 488) |
//! | in a dialog: OPTIONS, MESSAGE, INFO, NOTIFY | 200 at once, the dialog untouched (a BYE right after is never blocked) |
//! | in a dialog: any other method (REFER, SUBSCRIBE, PRACK, ...) | 405 with `Allow` |
//! | outside: OPTIONS | 200 with `Allow` |
//! | outside: REGISTER with the registrar on | the registrar ([`crate::registrar`]) |
//! | outside: INVITE, REGISTER (registrar off) | 403 (no open relay) |
//! | outside: BYE, CANCEL | 481 |
//! | outside: ACK | nothing |
//! | outside: any other method | 405 with `Allow` |

use rsipstack::sip::{Method, Version};

/// The methods Campana accepts (the `Allow` header of its 405 and OPTIONS answers).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, MESSAGE, NOTIFY";
/// The same with REGISTER, when the built-in registrar is on.
pub const ALLOW_WITH_REGISTER: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, MESSAGE, NOTIFY, REGISTER";

/// What to do with one incoming request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Hand it to its dialog (BYE, re-INVITE, UPDATE).
    Dialog,
    /// Hand it to the registrar.
    Register,
    /// Answer at once with this status; `allow` adds the `Allow` header.
    Reply { status: u16, allow: bool },
    /// Refuse (403) and count it as an attempt from outside.
    Refuse,
    /// Nothing to answer (ACK).
    Ignore,
}

/// Decides the answer to a request of `version` and `method`; `in_dialog` tells whether it
/// matched a dialog Campana created.
pub fn decide(version: &Version, method: &Method, in_dialog: bool, registrar_on: bool) -> Inbound {
    if *version != Version::V2 {
        return match method {
            Method::Ack => Inbound::Ignore,
            _ => Inbound::Reply { status: 505, allow: false },
        };
    }
    if in_dialog {
        return match method {
            Method::Invite | Method::Update | Method::Bye | Method::Ack | Method::Cancel => Inbound::Dialog,
            Method::Options => Inbound::Reply { status: 200, allow: true },
            Method::Message | Method::Info | Method::Notify => Inbound::Reply { status: 200, allow: false },
            _ => Inbound::Reply { status: 405, allow: true },
        };
    }
    match method {
        Method::Options => Inbound::Reply { status: 200, allow: true },
        Method::Ack => Inbound::Ignore,
        Method::Register if registrar_on => Inbound::Register,
        Method::Invite | Method::Register => Inbound::Refuse,
        Method::Bye | Method::Cancel => Inbound::Reply { status: 481, allow: false },
        _ => Inbound::Reply { status: 405, allow: true },
    }
}

/// The `Allow` header's value.
pub fn allow(registrar_on: bool) -> &'static str {
    if registrar_on {
        ALLOW_WITH_REGISTER
    } else {
        ALLOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let v2 = Version::V2;
        assert_eq!(decide(&Version::V(3, 0), &Method::Invite, false, true), Inbound::Reply { status: 505, allow: false });
        assert_eq!(decide(&Version::V(3, 0), &Method::Bye, true, true), Inbound::Reply { status: 505, allow: false });
        for m in [Method::Options, Method::Message, Method::Info, Method::Notify] {
            let Inbound::Reply { status: 200, .. } = decide(&v2, &m, true, false) else { panic!("{m} in a dialog not answered 200") };
        }
        assert_eq!(decide(&v2, &Method::Options, true, false), Inbound::Reply { status: 200, allow: true });
        assert_eq!(decide(&v2, &Method::Bye, true, false), Inbound::Dialog);
        assert_eq!(decide(&v2, &Method::Invite, true, false), Inbound::Dialog);
        assert_eq!(decide(&v2, &Method::Refer, true, false), Inbound::Reply { status: 405, allow: true });
        assert_eq!(decide(&v2, &Method::Subscribe, false, false), Inbound::Reply { status: 405, allow: true });
        assert_eq!(decide(&v2, &Method::Invite, false, true), Inbound::Refuse);
        assert_eq!(decide(&v2, &Method::Register, false, false), Inbound::Refuse);
        assert_eq!(decide(&v2, &Method::Register, false, true), Inbound::Register);
        assert_eq!(decide(&v2, &Method::Cancel, false, true), Inbound::Reply { status: 481, allow: false });
        assert_eq!(decide(&v2, &Method::Ack, false, true), Inbound::Ignore);
    }
}
