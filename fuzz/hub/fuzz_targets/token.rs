//! The `Authorization` header of every authenticated request through a real hub's
//! `Authenticator` (the check is in `checks/token.rs`, shared with the ordinary suite's
//! replay of the corpus).

#![no_main]

#[path = "../checks/token.rs"]
mod token;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    token::check(data);
});
