//! Several tracker instances sharing swarms through Redis pub/sub (docs/scaling.md): the link
//! between one [`TrackerService`] and the others. It carries what the sans-IO tracker queues
//! ([`ClusterOut`]: local peers arriving and leaving, frames for peers on other instances) to
//! Redis, and what the others publish back into the tracker (`remote_up`, `remote_down`,
//! `forget_instance`) or straight to a local connection (relayed offers and answers).
//!
//! Decides nothing about the protocol: which peer gets an offer, counts and expiry stay in
//! `signal::server`. Never blocks a tracker call on Redis (a bounded queue sits between them),
//! never holds the tracker lock across an `.await`, and never brings the tracker down: when
//! Redis is unreachable the instance serves its own peers alone, logs once, and reconnects.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::tracker::{ClusterHook, TrackerService};
use crate::id::{InfoHash, PeerId};
use crate::signal::server::{ClusterOut, InstanceId};

/// Every instance subscribes here: peers arriving and leaving, hellos and goodbyes.
pub const PEERS_CHANNEL: &str = "seedtab:peers";

/// The channel only instance `id` subscribes to: frames for its peers, and the peer lists the
/// others send when it says hello.
pub fn instance_channel(id: &str) -> String {
    format!("seedtab:inst:{id}")
}

/// Messages waiting for Redis. A tracker call never waits for room: past this, messages are
/// dropped and counted (`cluster_dropped`); signalling is best effort, and an `Up` lost is
/// repeated by the peer's next announce.
const QUEUE: usize = 10_000;

/// Peers in one `up`/`down` message: bounds a message's size when a whole instance's peers
/// are sent at once (a hello), while one message still carries a burst of announces.
const PEERS_PER_MESSAGE: usize = 500;

/// How long connecting to Redis, and any command, may take: a Redis that does not answer must
/// be noticed, not waited on.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// A subscription that sees no traffic is pinged this often, so a silently dead connection
/// (no FIN: a cable, a firewall) is found within about this plus [`REDIS_TIMEOUT`].
const PING_EVERY: Duration = Duration::from_secs(5);

/// Reconnect back-off, doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// After a failed connect, the publisher drops messages for this long instead of trying again
/// for each (each try may take [`REDIS_TIMEOUT`]).
const PUBLISH_RETRY: Duration = Duration::from_secs(1);

/// How to join a cluster: `seedtab tracker --redis URL [--instance-id ID]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `redis://HOST:PORT[/DB]` (or `rediss://`, `redis+unix://`, as the `redis` crate reads).
    pub redis_url: String,
    /// Unique among the instances on one Redis; it names this instance's channel.
    pub instance_id: String,
}

impl ClusterOptions {
    /// With `instance_id` absent, a random one (16 hex digits): ids only need to be unique,
    /// and a restarted instance is better off as a new one than as a ghost of the old.
    pub fn new(redis_url: &str, instance_id: Option<String>) -> Result<ClusterOptions, String> {
        let instance_id = match instance_id {
            Some(id) => id,
            None => format!("{:016x}", super::entropy_seed()),
        };
        // It becomes part of a channel name and of log lines: keep it plain.
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if instance_id.is_empty() || instance_id.len() > 64 || !instance_id.chars().all(plain) {
            return Err(format!(
                "instance id {instance_id:?}: use 1 to 64 of A-Z a-z 0-9 - _ ."
            ));
        }
        redis::Client::open(redis_url).map_err(|e| format!("bad Redis URL: {e}"))?;
        Ok(ClusterOptions {
            redis_url: redis_url.to_owned(),
            instance_id,
        })
    }
}

/// A message on Redis, as JSON with its kind in `t`. Ids are 40 hex digits; `from` is the
/// sender's instance id. docs/scaling.md lists them; changing one incompatibly means new
/// channel names, so old and new instances never misread each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Wire {
    /// "I (re)joined": the others forget what they had from `from` and send it their peers.
    /// `nonce` tells two instances wrongly given the same id apart.
    Hello { from: String, nonce: String },
    /// "I am shutting down": the others drop all of `from`'s peers at once.
    Bye { from: String },
    /// Peers of `from` that announced: `[info_hash, peer_id, complete]`.
    Up {
        from: String,
        peers: Vec<(String, String, bool)>,
    },
    /// Peers of `from` that left: `[info_hash, peer_id]`.
    Down {
        from: String,
        peers: Vec<(String, String)>,
    },
    /// A tracker frame (a relayed offer or answer, exactly as the peer will read it) for the
    /// receiving instance's peer `to` in `info_hash`.
    Relay {
        from: String,
        info_hash: String,
        to: String,
        frame: String,
    },
}

/// What waits in the queue to Redis, in order.
enum Outgoing {
    Tracker(ClusterOut),
    Wire { channel: String, message: Wire },
}

/// Instance ids as the tracker numbers them ([`InstanceId`]) and back. Only grows: instances
/// that come and go leave a few bytes each.
#[derive(Default)]
struct Names {
    ids: HashMap<String, InstanceId>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> InstanceId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = InstanceId(self.names.len() as u32);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    fn name(&self, id: InstanceId) -> Option<&str> {
        self.names.get(id.0 as usize).map(String::as_str)
    }
}

/// What the subscriber and the publisher share.
struct Shared {
    service: Arc<TrackerService>,
    me: String,
    nonce: String,
    names: Mutex<Names>,
    queue: mpsc::Sender<Outgoing>,
}

impl Shared {
    fn names(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(&self, channel: String, message: Wire) {
        if self
            .queue
            .try_send(Outgoing::Wire { channel, message })
            .is_err()
        {
            self.service.cluster_lost(1);
        }
    }

    /// Sends every local peer as `up` messages to `channel`. Taken and queued under the
    /// tracker lock, so a peer leaving meanwhile has its `down` queued after, not before.
    fn send_local_peers(&self, channel: &str) {
        let lost = self.service.with_tracker(|t, _| {
            let peers = t.local_peers();
            let mut lost = 0;
            for chunk in peers.chunks(PEERS_PER_MESSAGE) {
                let peers = chunk
                    .iter()
                    .map(|(ih, pid, c)| (ih.to_hex(), pid.to_hex(), *c))
                    .collect();
                let message = Wire::Up {
                    from: self.me.clone(),
                    peers,
                };
                let channel = channel.to_owned();
                if self
                    .queue
                    .try_send(Outgoing::Wire { channel, message })
                    .is_err()
                {
                    lost += 1;
                }
            }
            lost
        });
        if lost > 0 {
            self.service.cluster_lost(lost);
        }
    }
}

/// The running link; [`ClusterLink::leave`] says goodbye and stops it.
pub(crate) struct ClusterLink {
    shared: Arc<Shared>,
    subscriber: JoinHandle<()>,
    publisher: JoinHandle<()>,
}

/// Joins the cluster `opts` names: hooks the tracker up and starts the Redis tasks. Fails only
/// on a malformed URL; an unreachable Redis is retried in the background while the tracker
/// serves its own peers.
pub(crate) fn start(service: Arc<TrackerService>, opts: ClusterOptions) -> io::Result<ClusterLink> {
    let client = redis::Client::open(opts.redis_url.as_str()).map_err(|e| {
        // Not the URL itself: it may hold a password.
        io::Error::new(io::ErrorKind::InvalidInput, format!("bad Redis URL: {e}"))
    })?;
    let (queue, rx) = mpsc::channel(QUEUE);
    let hook_queue = queue.clone();
    service.attach_cluster(ClusterHook {
        instance_id: opts.instance_id.clone(),
        send: Box::new(move |out| {
            let mut lost = 0;
            for m in out {
                if hook_queue.try_send(Outgoing::Tracker(m)).is_err() {
                    lost += 1;
                }
            }
            lost
        }),
        connected: false,
        joins: 0,
        dropped: 0,
    });
    let shared = Arc::new(Shared {
        service,
        me: opts.instance_id.clone(),
        nonce: format!("{:016x}", super::entropy_seed()),
        names: Mutex::new(Names::default()),
        queue,
    });
    tracing::info!(instance = %opts.instance_id, "tracker cluster: joining through Redis");
    let publisher = tokio::spawn(publish_loop(client.clone(), shared.clone(), rx));
    let subscriber = tokio::spawn(subscribe_loop(client, shared.clone()));
    Ok(ClusterLink {
        shared,
        subscriber,
        publisher,
    })
}

impl ClusterLink {
    /// Tells the others this instance is going (they drop its peers at once instead of letting
    /// them expire), then stops. Waits at most a couple of seconds for Redis.
    pub(crate) async fn leave(self) {
        self.subscriber.abort();
        let _ = self.subscriber.await;
        self.shared.service.detach_cluster();
        let bye = Wire::Bye {
            from: self.shared.me.clone(),
        };
        self.shared.enqueue(PEERS_CHANNEL.to_owned(), bye);
        // The publisher ends once the queue is drained and its last sender gone.
        drop(self.shared);
        let mut publisher = self.publisher;
        if tokio::time::timeout(2 * REDIS_TIMEOUT, &mut publisher)
            .await
            .is_err()
        {
            publisher.abort();
        }
    }
}

async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Publishes what is queued, in order, on one connection: Redis then delivers it in that order
/// to each subscriber, which is what lets a peer's `up` arrive before the offers it sent.
async fn publish_loop(
    client: redis::Client,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut retry_at = tokio::time::Instant::now();
    let mut batch = Vec::new();
    // `shared` holds a sender of this very queue: keep only what is needed, so the loop ends
    // once every real sender is gone.
    let (service, me) = (shared.service.clone(), shared.me.clone());
    let names = Arc::downgrade(&shared);
    drop(shared);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        let messages = {
            let Some(shared) = names.upgrade() else {
                // Leaving: only wire messages (the goodbye) are still worth sending.
                let wire = batch.drain(..).filter_map(|o| match o {
                    Outgoing::Wire { channel, message } => Some((channel, message, None)),
                    Outgoing::Tracker(_) => None,
                });
                let wire: Vec<_> = wire.collect();
                publish_all(&client, &service, &mut conn, &mut retry_at, wire).await;
                continue;
            };
            let names = shared.names();
            encode(&me, &names, batch.drain(..))
        };
        publish_all(&client, &service, &mut conn, &mut retry_at, messages).await;
    }
}

async fn publish_all(
    client: &redis::Client,
    service: &TrackerService,
    conn: &mut Option<MultiplexedConnection>,
    retry_at: &mut tokio::time::Instant,
    messages: Vec<(String, Wire, Option<InstanceId>)>,
) {
    for (channel, message, target) in messages {
        let payload = serde_json::to_string(&message).unwrap_or_default();
        // Two tries: after Redis restarts, the connection held from before fails its first
        // command, and that first message is typically a hello or the answer to one, which
        // nothing would repeat.
        let mut sent = None;
        for _ in 0..2 {
            if conn.is_none() && tokio::time::Instant::now() >= *retry_at {
                match connect(client).await {
                    Ok(c) => *conn = Some(c),
                    Err(e) => {
                        tracing::debug!(error = %e, "tracker cluster: cannot publish");
                        *retry_at = tokio::time::Instant::now() + PUBLISH_RETRY;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { break };
            let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async(c)
                .await;
            match result {
                Ok(n) => {
                    sent = Some(n);
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "tracker cluster: publish failed");
                    *conn = None;
                }
            }
        }
        match sent {
            // Nobody subscribes to that instance's channel: it is gone (or reconnecting, and
            // will say hello again), so stop sending offers its way.
            Some(0) => {
                if let Some(inst) = target {
                    let gone = service.with_tracker(|t, _| t.forget_instance(inst));
                    tracing::debug!(channel, gone, "tracker cluster: instance not listening");
                }
                service.cluster_lost(1);
            }
            Some(_) => {}
            None => service.cluster_lost(1),
        }
    }
}

/// Turns queued items into messages: consecutive `Up`s (and `Down`s) share one message, relays
/// go to their instance's channel. Order is kept.
fn encode(
    me: &str,
    names: &Names,
    items: impl Iterator<Item = Outgoing>,
) -> Vec<(String, Wire, Option<InstanceId>)> {
    let mut out: Vec<(String, Wire, Option<InstanceId>)> = Vec::new();
    for item in items {
        let last = out.last_mut().map(|(_, m, _)| m);
        match item {
            Outgoing::Wire { channel, message } => out.push((channel, message, None)),
            Outgoing::Tracker(ClusterOut::Up {
                info_hash,
                peer_id,
                complete,
            }) => {
                let entry = (info_hash.to_hex(), peer_id.to_hex(), complete);
                match last {
                    Some(Wire::Up { from, peers })
                        if from == me && peers.len() < PEERS_PER_MESSAGE =>
                    {
                        peers.push(entry)
                    }
                    _ => out.push((
                        PEERS_CHANNEL.to_owned(),
                        Wire::Up {
                            from: me.to_owned(),
                            peers: vec![entry],
                        },
                        None,
                    )),
                }
            }
            Outgoing::Tracker(ClusterOut::Down { info_hash, peer_id }) => {
                let entry = (info_hash.to_hex(), peer_id.to_hex());
                match last {
                    Some(Wire::Down { peers, .. }) if peers.len() < PEERS_PER_MESSAGE => {
                        peers.push(entry)
                    }
                    _ => out.push((
                        PEERS_CHANNEL.to_owned(),
                        Wire::Down {
                            from: me.to_owned(),
                            peers: vec![entry],
                        },
                        None,
                    )),
                }
            }
            Outgoing::Tracker(ClusterOut::Relay {
                to,
                info_hash,
                peer_id,
                frame,
            }) => {
                let Some(name) = names.name(to) else { continue };
                out.push((
                    instance_channel(name),
                    Wire::Relay {
                        from: me.to_owned(),
                        info_hash: info_hash.to_hex(),
                        to: peer_id.to_hex(),
                        frame,
                    },
                    Some(to),
                ));
            }
        }
    }
    out
}

/// Keeps a subscription to Redis, reconnecting with back-off; while there is none, the tracker
/// lists no remote peers and serves its own alone.
async fn subscribe_loop(client: redis::Client, shared: Arc<Shared>) {
    let mut backoff = BACKOFF.0;
    // Logged once per outage (and once if Redis is missing at start), not at every retry.
    let mut log_next_failure = true;
    loop {
        let mut subscribed = false;
        let result = session(&client, &shared, &mut subscribed).await;
        let forgotten = shared.service.set_cluster_connected(false);
        let why = match result {
            Ok(()) => "connection closed".to_owned(),
            Err(e) => e.to_string(),
        };
        if subscribed {
            backoff = BACKOFF.0;
            log_next_failure = true;
        }
        if log_next_failure {
            tracing::warn!(
                error = %why, forgotten,
                "tracker cluster: Redis unreachable; serving local peers only, reconnecting"
            );
            log_next_failure = false;
        } else {
            tracing::debug!(error = %why, "tracker cluster: still no Redis");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One subscription, until it fails. Subscribes to the shared and the own channel, then says
/// hello and sends this instance's peers (so the others need not wait for re-announces).
async fn session(
    client: &redis::Client,
    shared: &Shared,
    subscribed: &mut bool,
) -> redis::RedisResult<()> {
    let timed_out = || redis::RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
    let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(PEERS_CHANNEL).await?;
    sink.subscribe(instance_channel(&shared.me)).await?;
    shared.service.set_cluster_connected(true);
    *subscribed = true;
    tracing::info!(instance = %shared.me, "tracker cluster: subscribed to Redis");
    let hello = Wire::Hello {
        from: shared.me.clone(),
        nonce: shared.nonce.clone(),
    };
    shared.enqueue(PEERS_CHANNEL.to_owned(), hello);
    shared.send_local_peers(PEERS_CHANNEL);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    ping.reset();
                    match std::str::from_utf8(msg.get_payload_bytes()) {
                        Ok(text) => receive(shared, text),
                        Err(_) => tracing::debug!("tracker cluster: non-UTF-8 message ignored"),
                    }
                }
                None => return Ok(()),
            },
            _ = ping.tick() => {
                tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| timed_out())??;
            }
        }
    }
}

/// Applies one message from another instance.
fn receive(shared: &Shared, text: &str) {
    let message: Wire = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "tracker cluster: unreadable message ignored");
            return;
        }
    };
    let service = &shared.service;
    match message {
        Wire::Hello { from, nonce } if from == shared.me => {
            if nonce != shared.nonce {
                tracing::error!(
                    instance = %from,
                    "tracker cluster: another instance uses this instance id; give each its own"
                );
            }
        }
        Wire::Hello { from, .. } => {
            // It (re)started or lost Redis for a while: what it had is replaced by what it
            // sends next, and it learns our peers from us.
            let id = shared.names().id(&from);
            service.with_tracker(|t, _| t.forget_instance(id));
            shared.send_local_peers(&instance_channel(&from));
        }
        Wire::Bye { from }
        | Wire::Up { from, .. }
        | Wire::Down { from, .. }
        | Wire::Relay { from, .. }
            if from == shared.me => {}
        Wire::Bye { from } => {
            let id = shared.names().id(&from);
            let gone = service.with_tracker(|t, _| t.forget_instance(id));
            tracing::debug!(instance = %from, gone, "tracker cluster: instance left");
        }
        Wire::Up { from, peers } => {
            let id = shared.names().id(&from);
            service.with_tracker(|t, now| {
                for (ih, pid, complete) in peers {
                    if let (Ok(ih), Ok(pid)) = (InfoHash::from_hex(&ih), PeerId::from_hex(&pid)) {
                        t.remote_up(id, ih, pid, complete, now);
                    }
                }
            });
        }
        Wire::Down { from, peers } => {
            let id = shared.names().id(&from);
            service.with_tracker(|t, _| {
                for (ih, pid) in peers {
                    if let (Ok(ih), Ok(pid)) = (InfoHash::from_hex(&ih), PeerId::from_hex(&pid)) {
                        t.remote_down(id, ih, pid);
                    }
                }
            });
        }
        Wire::Relay {
            info_hash,
            to,
            frame,
            ..
        } => {
            if let (Ok(ih), Ok(pid)) = (InfoHash::from_hex(&info_hash), PeerId::from_hex(&to)) {
                service.deliver_relayed(&ih, &pid, frame);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_check_the_id_and_the_url() {
        let o = ClusterOptions::new("redis://127.0.0.1:6379", None).unwrap();
        assert_eq!(o.instance_id.len(), 16);
        assert!(ClusterOptions::new("redis://127.0.0.1:6379", Some("eu-1.a_b".into())).is_ok());
        for bad in ["", "a b", "x:y", &"z".repeat(65)] {
            assert!(
                ClusterOptions::new("redis://h", Some(bad.into())).is_err(),
                "{bad:?}"
            );
        }
        assert!(ClusterOptions::new("http://nope", Some("a".into())).is_err());
    }

    #[test]
    fn encoding_batches_in_order_and_routes_relays() {
        let mut names = Names::default();
        let other = names.id("two");
        let up = |n: u8| {
            Outgoing::Tracker(ClusterOut::Up {
                info_hash: InfoHash([1; 20]),
                peer_id: PeerId([n; 20]),
                complete: n == 2,
            })
        };
        let items = vec![
            up(1),
            up(2),
            Outgoing::Tracker(ClusterOut::Relay {
                to: other,
                info_hash: InfoHash([1; 20]),
                peer_id: PeerId([9; 20]),
                frame: "{}".into(),
            }),
            up(3),
            Outgoing::Tracker(ClusterOut::Down {
                info_hash: InfoHash([1; 20]),
                peer_id: PeerId([1; 20]),
            }),
            // An instance the tracker numbered but this side never named: nothing to send.
            Outgoing::Tracker(ClusterOut::Relay {
                to: InstanceId(77),
                info_hash: InfoHash([1; 20]),
                peer_id: PeerId([9; 20]),
                frame: "{}".into(),
            }),
        ];
        let out = encode("one", &names, items.into_iter());
        let shape: Vec<(&str, usize)> = out
            .iter()
            .map(|(ch, m, _)| {
                let n = match m {
                    Wire::Up { peers, .. } => peers.len(),
                    Wire::Down { peers, .. } => peers.len(),
                    _ => 1,
                };
                (ch.as_str(), n)
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("seedtab:peers", 2),
                ("seedtab:inst:two", 1),
                ("seedtab:peers", 1),
                ("seedtab:peers", 1)
            ]
        );
        assert_eq!(out[1].2, Some(other));
        let json = serde_json::to_value(&out[0].1).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"t": "up", "from": "one", "peers": [
                ["0101010101010101010101010101010101010101", "0101010101010101010101010101010101010101", false],
                ["0101010101010101010101010101010101010101", "0202020202020202020202020202020202020202", true]
            ]})
        );
        let back: Wire = serde_json::from_value(json).unwrap();
        assert_eq!(back, out[0].1);
    }
}
