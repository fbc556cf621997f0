//! Fuzz target: `SignedReceipt::decode` and `verify` on arbitrary bytes (src/receipt/mod.rs).
//! Beyond "no panic", whatever decodes must be the canonical encoding of what it decoded to (one
//! receipt, one byte string: ledgers key on it), fit the size limit and pass the bounds checks;
//! the signature check must run without panicking on any receipt that decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seedtab::receipt::{SignedReceipt, MAX_ENCODED_LEN, SIGNING_PREFIX};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = SignedReceipt::decode(data) else {
        return;
    };
    assert_eq!(r.encode(), data, "accepted a non-canonical encoding");
    assert!(data.len() <= MAX_ENCODED_LEN);
    assert_eq!(r.receipt.check_bounds(), Ok(()));
    assert!(r.receipt.signing_message().starts_with(SIGNING_PREFIX));
    // The fuzzer cannot forge a signature; this is here for panics in the key and signature
    // parsing. A verified receipt must survive the full path unchanged.
    if r.verify().is_ok() {
        assert_eq!(SignedReceipt::decode_verified(data).as_ref(), Ok(&r));
    }
});
