//! The `Authorization` header (and the `active-user` cookie) through `hubtokens`'
//! `Verifier`, as the hub's `Authenticator` uses it (the check is in `checks/token.rs`,
//! shared with the ordinary suite's replay of the corpus).

#![no_main]

#[path = "../checks/token.rs"]
mod token;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    token::check(data);
});
