//! WebSocket-tracker signalling (the protocol WebTorrent peers use to find each other and swap
//! WebRTC offers and answers): the message formats (`msg`), the tracker's swarm and relay logic
//! (`server`), the peer's side (`client`), and the WebSocket framing the tracker reads and writes
//! (`ws_frame`).
//!
//! Sans-IO and compiled for wasm32 too: nothing here may touch a socket, a clock or a random
//! source; time is a `u64` of milliseconds and randomness a `&mut Rng`, both passed in.

pub mod client;
pub mod msg;
pub mod server;
pub mod ws_frame;

pub use msg::SignalError;
