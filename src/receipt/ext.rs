//! The BEP 10 extension that carries reward keys and receipts (docs/receipts.md, "Wire").
//!
//! Names and ids only: the extended handshake (wire::extended) reads and writes the fields, and
//! the engine decides when to sign and what to believe. Peers that do not list the extension
//! (WebTorrent, libtorrent) never receive its messages.

/// The name under which the extension is listed in the handshake's `m` dict.
pub const EXT_NAME: &str = "seedtab_receipt";

/// The id *we* ask peers to use when sending us receipts (our `m` entry).
pub const LOCAL_ID: u8 = 2;

/// Handshake key: the sender's 32-byte Ed25519 reward key.
pub const HANDSHAKE_KEY: &str = "seedtab_key";

/// Handshake key: the 16-byte session id under which the sender will sign receipts for bytes it
/// receives on this connection.
pub const HANDSHAKE_SESSION: &str = "seedtab_sid";
