//! Coverage-guided fuzzing of what Campana does with a SIP request that reaches its port: the
//! parse, the in-dialog / out-of-dialog answer table, the registrar's decision on a REGISTER
//! (challenge, digest, nonce, lockout, Contact rules) and the oversized-datagram answer. See
//! `campana_sip::fuzzing::one` and crates/sip/README.md ("Fuzzing") for the command.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    campana_sip::fuzzing::one(data);
});
