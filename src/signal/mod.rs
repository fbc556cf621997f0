//! WebSocket-tracker signalling (the protocol WebTorrent peers use to find each other and swap
//! WebRTC offers and answers): the message formats (`msg`), the tracker's swarm and relay logic
//! (`server`) and the peer's side (`client`).
//!
//! Sans-IO and compiled for wasm32 too: nothing here may touch a socket, a clock or a random
//! source; time is a `u64` of milliseconds and randomness a `&mut Rng`, both passed in.

pub mod client;
pub mod msg;
pub mod server;

pub use msg::SignalError;
