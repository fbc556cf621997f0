//! Reward receipts inside a session (docs/receipts.md): as a downloader, credit each peer with
//! the verified bytes it sent and ask the driver to sign a new cumulative receipt now and then;
//! as an uploader, check every receipt a peer sends before keeping it, and optionally hold back
//! a receipt-capable peer that stops paying.
//!
//! Signing is the driver's (a browser's key never leaves WebCrypto): the session emits
//! `Event::SignReceipt` and waits for `receipt_signed`. Nothing here trusts a receipt before its
//! signature has verified, and nothing here reads a clock: wall-clock time comes in with
//! [`RewardConfig::unix_ms_at_zero`].

use std::collections::BTreeMap;

use crate::receipt::{ext, Receipt, SignedReceipt};
use crate::wire::{ExtendedHandshake, Message, RewardFields};

use super::{Event, PeerKey, Session};

/// How a session takes part in receipts. Without it (the default) the extension is not
/// announced and nothing is signed or checked.
#[derive(Debug, Clone)]
pub struct RewardConfig {
    /// Our Ed25519 public key.
    pub key: [u8; 32],
    /// Wall-clock milliseconds since the Unix epoch at session time 0 (receipt timestamps).
    pub unix_ms_at_zero: u64,
    /// Sign once this many new verified bytes came from a peer...
    pub receipt_every_bytes: u64,
    /// ...or once the oldest unsigned byte is this old.
    pub receipt_every_ms: u64,
    /// "Require receipts": a receipt-capable peer whose receipts trail what we sent it by more
    /// than this is choked until it catches up. Peers without the extension are unaffected.
    pub require_receipts: Option<u64>,
}

impl RewardConfig {
    pub fn new(key: [u8; 32], unix_ms_at_zero: u64) -> RewardConfig {
        RewardConfig {
            key,
            unix_ms_at_zero,
            receipt_every_bytes: 4 << 20,
            receipt_every_ms: 1_000,
            require_receipts: None,
        }
    }
}

/// Signature checks a peer can cause are bounded: one per this many milliseconds, unless the
/// receipt adds at least [`FREE_STEP_BYTES`] (which what we sent bounds) or completes the
/// torrent. A receipt that must wait is kept (only the newest) and checked by `tick`, so the
/// last receipt of a fast transfer is never lost.
const MIN_VERIFY_INTERVAL_MS: u64 = 50;
const FREE_STEP_BYTES: u64 = 256 * 1024;

/// One connection's receipt state, both directions.
#[derive(Debug, Default, Clone)]
pub(crate) struct PeerReward {
    /// The session id we sign under for bytes from this peer; sent in our handshake.
    pub our_session: [u8; 16],
    /// Its key and session, when its handshake announced the extension.
    pub theirs: Option<RewardFields>,
    /// The id it wants receipts under.
    pub their_id: Option<u8>,
    // Downloader side.
    /// Verified bytes it sent us, cumulative.
    pub credited: u64,
    /// `bytes` of the last receipt we asked to sign.
    pub signed: u64,
    pub seq: u64,
    pub signing: bool,
    /// When the oldest credited-but-unsigned byte was verified.
    pub unsigned_since_ms: Option<u64>,
    // Uploader side.
    /// Piece data we sent it, cumulative.
    pub sent: u64,
    /// Bytes sent of pieces it has not announced yet: it cannot have verified (or signed for)
    /// them, so require mode does not count them against it, up to its limit.
    pub open: BTreeMap<u32, u64>,
    /// The latest valid receipt it signed for us.
    pub latest: Option<SignedReceipt>,
    pub last_verify_ms: Option<u64>,
    /// A receipt that arrived too soon after the last check, waiting for `tick`.
    pub pending: Option<Vec<u8>>,
    /// Choked because its receipts trail too far (require mode).
    pub held: bool,
}

impl Session {
    /// Takes part in receipts with this key from now on: peers connected later learn our key
    /// in the extended handshake. Call before connecting peers.
    pub fn set_rewards(&mut self, rewards: Option<RewardConfig>) {
        self.rewards = rewards;
    }

    pub fn rewards(&self) -> Option<&RewardConfig> {
        self.rewards.as_ref()
    }

    /// Turns "require receipts" on (with the unpaid-bytes limit) or off, from now on. Off
    /// releases every peer held back for want of receipts.
    pub fn set_require_receipts(&mut self, limit: Option<u64>) {
        let Some(cfg) = self.rewards.as_mut() else {
            return;
        };
        cfg.require_receipts = limit;
        let mut released = false;
        for peer in self.peers.values_mut() {
            let r = &mut peer.reward;
            if r.held && limit.is_none_or(|l| !r.owed_beyond(l)) {
                r.held = false;
                released = true;
            }
        }
        if released {
            self.rechoke(false);
        }
    }

    /// The latest valid receipt each connected peer signed for us.
    pub fn receipts_held(&self) -> Vec<(PeerKey, SignedReceipt)> {
        self.peers
            .iter()
            .filter_map(|(&k, p)| p.reward.latest.clone().map(|r| (k, r)))
            .collect()
    }

    /// The driver signed (or failed to sign) the receipt of an `Event::SignReceipt`. On success
    /// it goes to the peer; on failure this peer gets no more receipts.
    pub fn receipt_signed(
        &mut self,
        key: PeerKey,
        receipt: Receipt,
        signature: Option<[u8; 64]>,
        now_ms: u64,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let r = &mut peer.reward;
        r.signing = false;
        let (Some(signature), Some(id)) = (signature, r.their_id) else {
            r.their_id = None;
            return;
        };
        if receipt.seq != r.seq || receipt.bytes != r.signed {
            return; // Not the one we asked for: a confused driver; the next one will do.
        }
        let payload = SignedReceipt { receipt, signature }.encode();
        Message::Extended { id, payload }.encode(&mut peer.outbox);
        self.maybe_sign(key, now_ms, false);
    }

    /// Our additions to the extended handshake for a new connection.
    pub(super) fn add_reward_fields(&self, key: PeerKey, hs: &mut ExtendedHandshake) {
        let (Some(cfg), Some(peer)) = (&self.rewards, self.peers.get(&key)) else {
            return;
        };
        hs.m.insert(ext::EXT_NAME.to_string(), ext::LOCAL_ID);
        hs.reward = Some(RewardFields {
            key: cfg.key,
            session: peer.reward.our_session,
        });
    }

    /// The peer's extended handshake arrived: does it speak receipts, and with which key?
    pub(super) fn reward_handshake(&mut self, key: PeerKey, hs: &ExtendedHandshake) {
        let Some(cfg) = &self.rewards else { return };
        let our_key = cfg.key;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        // A second handshake may not swap keys under a running session.
        if peer.reward.theirs.is_some() {
            return;
        }
        if let (Some(id), Some(fields)) = (hs.receipt_id(), hs.reward) {
            if fields.key != our_key {
                peer.reward.theirs = Some(fields);
                peer.reward.their_id = Some(id);
            }
        }
    }

    /// A verified piece: each peer that sent blocks of it is owed a receipt for them.
    pub(super) fn credit_blocks(&mut self, contributors: &[Option<PeerKey>], piece_len: u64) {
        if self.rewards.is_none() {
            return;
        }
        let bs = crate::metainfo::BLOCK_SIZE as u64;
        let now = self.now_ms;
        for (b, who) in contributors.iter().enumerate() {
            let Some(peer) = who.and_then(|k| self.peers.get_mut(&k)) else {
                continue;
            };
            if peer.reward.their_id.is_none() {
                continue;
            }
            let start = b as u64 * bs;
            let len = (start + bs).min(piece_len).saturating_sub(start);
            peer.reward.credited += len;
            peer.reward.unsigned_since_ms.get_or_insert(now);
        }
        let mut keys: Vec<PeerKey> = contributors.iter().flatten().copied().collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            self.maybe_sign(k, now, false);
        }
    }

    /// Asks for a receipt when enough bytes or time went unsigned, or when we are complete
    /// (the last bytes of a download must not wait for a timer the tab may not live to see).
    pub(super) fn maybe_sign(&mut self, key: PeerKey, now_ms: u64, force: bool) {
        let Some(cfg) = &self.rewards else { return };
        let (every_bytes, every_ms, our_key, at_zero) = (
            cfg.receipt_every_bytes,
            cfg.receipt_every_ms,
            cfg.key,
            cfg.unix_ms_at_zero,
        );
        let Some(length) = self.meta.as_ref().map(|m| m.info.total_length) else {
            return;
        };
        let complete = self.have.is_complete();
        let info_hash = self.info_hash.0;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let r = &mut peer.reward;
        let (Some(theirs), Some(_)) = (r.theirs, r.their_id) else {
            return;
        };
        // A receipt never says more than the torrent's length, even when pieces came twice
        // (re-fetched after a storage failure): once it says all, there is nothing more to sign.
        if r.signing || r.credited.min(length) <= r.signed {
            return;
        }
        let due = force
            || r.credited - r.signed >= every_bytes
            || complete
            || r.unsigned_since_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= every_ms);
        if !due {
            return;
        }
        r.seq += 1;
        r.signed = r.credited.min(length);
        r.signing = true;
        r.unsigned_since_ms = None;
        let receipt = Receipt {
            downloader: our_key,
            uploader: theirs.key,
            info_hash,
            length,
            // Ours, as announced in our handshake, so the uploader can match it.
            session: r.our_session,
            seq: r.seq,
            bytes: r.signed,
            timestamp_ms: at_zero.saturating_add(now_ms),
        };
        self.events.push_back(Event::SignReceipt { key, receipt });
    }

    /// Timer duty: receipts to sign that waited long enough, receipts to check that had to wait.
    pub(super) fn reward_tick(&mut self, now_ms: u64) {
        if self.rewards.is_none() {
            return;
        }
        for key in self.peer_keys() {
            self.maybe_sign(key, now_ms, false);
            let due = self.peers.get_mut(&key).and_then(|p| {
                let r = &mut p.reward;
                let ready = r
                    .last_verify_ms
                    .is_none_or(|t| now_ms.saturating_sub(t) >= MIN_VERIFY_INTERVAL_MS);
                if ready {
                    r.pending.take()
                } else {
                    None
                }
            });
            if let Some(payload) = due {
                if let Err(reason) = self.on_receipt(key, &payload) {
                    self.close(key, reason);
                }
            }
        }
    }

    /// The download just completed: every peer owed a receipt gets its last one now, while the
    /// tab is surely still open.
    pub(super) fn reward_complete(&mut self, now_ms: u64) {
        if self.rewards.is_none() {
            return;
        }
        for key in self.peer_keys() {
            self.maybe_sign(key, now_ms, false);
        }
    }

    /// A receipt-capable peer choked us: perhaps it wants paying before it goes on, so
    /// everything owed is signed now rather than at the next batch.
    pub(super) fn reward_choked(&mut self, key: PeerKey, now_ms: u64) {
        self.maybe_sign(key, now_ms, true);
    }

    /// The peer announced a piece: it verified it, so it can pay for what we sent of it.
    pub(super) fn reward_have(&mut self, key: PeerKey, piece: u32) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.reward.open.remove(&piece);
        }
    }

    /// Counts blocks `(piece, length)` sent to a peer; in require mode, holds back a peer whose
    /// receipts trail too far. Returns whether it is now held.
    pub(super) fn reward_sent(&mut self, key: PeerKey, blocks: &[(u32, u32)]) -> bool {
        let limit = self.rewards.as_ref().and_then(|c| c.require_receipts);
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let r = &mut peer.reward;
        for &(piece, len) in blocks {
            r.sent += u64::from(len);
            if r.their_id.is_some() {
                *r.open.entry(piece).or_default() += u64::from(len);
            }
        }
        let Some(limit) = limit else { return false };
        if r.their_id.is_none() || r.held {
            return false;
        }
        r.held = r.owed_beyond(limit);
        r.held
    }

    /// A receipt from the peer, for bytes we sent it. Errors close the connection: an honest
    /// peer never sends one that fails these checks.
    pub(super) fn on_receipt(&mut self, key: PeerKey, payload: &[u8]) -> Result<(), String> {
        let Some(cfg) = &self.rewards else {
            return Ok(()); // We never offered the extension; not ours to judge.
        };
        let our_key = cfg.key;
        let limit = cfg.require_receipts;
        let length = self.meta.as_ref().map(|m| m.info.total_length);
        let info_hash = self.info_hash.0;
        let now = self.now_ms;
        let peer = self.peers.get_mut(&key).ok_or("gone")?;
        let r = &mut peer.reward;
        let theirs = r
            .theirs
            .ok_or("receipt from a peer that announced no reward key")?;
        let signed = SignedReceipt::decode(payload).map_err(|e| format!("bad receipt: {e}"))?;
        let rc = &signed.receipt;
        if rc.uploader != our_key {
            return Err("receipt names another uploader".into());
        }
        if rc.downloader != theirs.key || rc.session != theirs.session {
            return Err("receipt key or session differs from the peer's handshake".into());
        }
        if rc.info_hash != info_hash || Some(rc.length) != length {
            return Err("receipt for another torrent or length".into());
        }
        if let Some(prev) = &r.latest {
            if rc.seq <= prev.receipt.seq || rc.bytes <= prev.receipt.bytes {
                return Err("receipt does not move forward".into());
            }
        }
        if rc.bytes > r.sent {
            return Err(format!(
                "receipt claims {} bytes, we sent {}",
                rc.bytes, r.sent
            ));
        }
        let step = rc.bytes - r.latest.as_ref().map_or(0, |l| l.receipt.bytes);
        let too_soon = r
            .last_verify_ms
            .is_some_and(|t| now.saturating_sub(t) < MIN_VERIFY_INTERVAL_MS);
        if too_soon && step < FREE_STEP_BYTES && Some(rc.bytes) != length {
            r.pending = Some(payload.to_vec());
            return Ok(());
        }
        r.pending = None;
        r.last_verify_ms = Some(now);
        signed.verify().map_err(|e| format!("bad receipt: {e}"))?;
        r.latest = Some(signed.clone());
        let release = r.held && limit.is_some_and(|l| !r.owed_beyond(l));
        if release {
            r.held = false;
        }
        self.events.push_back(Event::ReceiptReceived {
            key,
            receipt: signed,
        });
        if release {
            self.rechoke(false);
        }
        Ok(())
    }
}

impl PeerReward {
    /// Whether what we sent and it has not paid for passes `limit`. Bytes of pieces it has not
    /// verified yet are forgiven up to `limit` more: it cannot sign for them, and holding it
    /// back before it could would deadlock a peer that only we serve.
    fn owed_beyond(&self, limit: u64) -> bool {
        let attested = self.latest.as_ref().map_or(0, |l| l.receipt.bytes);
        let open: u64 = self.open.values().sum();
        self.sent
            .saturating_sub(attested)
            .saturating_sub(open.min(limit))
            > limit
    }
}

/// Fresh per-connection session id from the session's seeded generator.
pub(super) fn new_session_id(rng: &mut crate::rng::Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    id
}
