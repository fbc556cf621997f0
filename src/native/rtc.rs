//! WebRTC data channels for the native peer, over the `webrtc` crate: peer connections tuned to
//! talk to Chromium (DESIGN.md §5), offers and answers with every ICE candidate in the SDP
//! (WebTorrent does not trickle), and one data channel per connection turned into a stream of
//! [`ConnEvent`]s plus a [`Channel`] to write to.
//!
//! It carries bytes and nothing else: no BitTorrent, no tracker. It must never block the runtime
//! waiting for a peer: every wait is bounded, and writes queue in a task of their own.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};
use webrtc::runtime::{
    default_runtime, AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle,
    Runtime,
};

/// Chromium accepts messages up to this size; advertised in our SDP so its `send()` of large
/// messages does not throw (the crate's default advertises 64 KiB).
const MAX_MESSAGE_SIZE: u32 = 256 * 1024;
/// What one channel may hold unacknowledged before `send` waits: the crate's own
/// buffered-amount events are too loose to pace on.
const SEND_BUFFER_LIMIT: usize = 4 << 20;
/// UDP socket buffers asked of the OS: the default ~200 KiB drops packets under load, and each
/// lost packet can cost SCTP a one-second retransmit timeout.
const SOCKET_BUFFER: usize = 8 << 20;
/// Fits common paths with room for tunnels, like Chromium's own choice.
const SCTP_MTU: u32 = 1400;
/// ICE gathering that has not finished by then is used as it is.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes queued to a channel's writer task that still count as "room to write": below it the
/// driver hears [`ConnEvent::Writable`].
pub const LOW_WATER: usize = 1 << 20;
/// The driver stops handing bytes to a channel above this.
pub const HIGH_WATER: usize = 2 << 20;

/// How connections are made.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// Local UDP addresses to bind (`0.0.0.0:0` is every non-loopback interface).
    pub bind: Vec<String>,
    /// STUN/TURN URLs.
    pub ice_servers: Vec<String>,
}

impl Default for RtcConfig {
    fn default() -> RtcConfig {
        RtcConfig {
            bind: vec!["0.0.0.0:0".into()],
            ice_servers: Vec::new(),
        }
    }
}

/// What happens on one connection, delivered to its [`EventSink`].
pub enum ConnEvent {
    /// The data channel is open: write with this.
    Open(Channel),
    Message(Vec<u8>),
    /// The writer's queue fell below [`LOW_WATER`].
    Writable,
    /// The channel or the connection is gone (or failed to come up).
    Closed(String),
}

impl fmt::Debug for ConnEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnEvent::Open(_) => f.write_str("Open"),
            ConnEvent::Message(m) => write!(f, "Message({} bytes)", m.len()),
            ConnEvent::Writable => f.write_str("Writable"),
            ConnEvent::Closed(r) => write!(f, "Closed({r})"),
        }
    }
}

/// Where a connection's events go; the driver captures the connection's key in it.
pub type EventSink = Arc<dyn Fn(ConnEvent) + Send + Sync>;

/// The write half of an open data channel. Writes are queued to a task that sends them in
/// order; [`Channel::queued`] tells how much is waiting there.
#[derive(Clone)]
pub struct Channel {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Channel {
    fn start(dc: Arc<dyn DataChannel>, sink: EventSink) -> Channel {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                let len = bytes.len();
                if let Err(e) = dc.send(BytesMut::from(&bytes[..])).await {
                    sink(ConnEvent::Closed(format!("send failed: {e}")));
                    break;
                }
                let before = q.fetch_sub(len, Ordering::AcqRel);
                if before >= LOW_WATER && before - len < LOW_WATER {
                    sink(ConnEvent::Writable);
                }
            }
        });
        Channel { tx, queued }
    }

    /// Queues `bytes`; false if the channel's writer is gone.
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        self.queued.fetch_add(bytes.len(), Ordering::AcqRel);
        self.tx.send(bytes).is_ok()
    }

    /// Bytes queued and not yet handed to the data channel.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// One peer connection with its single data channel.
pub struct Conn {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
}

impl Conn {
    /// Closes the connection; the sink hears `Closed` if the channel was up.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }

    /// Sets the answer to our offer.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), String> {
        let desc = RTCSessionDescription::answer(sdp).map_err(|e| format!("bad answer: {e}"))?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(|e| format!("answer refused: {e}"))
    }

    /// The local SDP once ICE gathering completed (or [`GATHER_TIMEOUT`] passed).
    async fn gathered_sdp(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + GATHER_TIMEOUT;
        while !*self.gathered.borrow() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if tokio::time::timeout(left, self.gathered.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                break;
            }
        }
        match self.pc.local_description().await {
            Some(d) if !d.sdp.is_empty() => Ok(d.sdp),
            _ => Err("no local description".into()),
        }
    }
}

/// Makes a connection with a data channel and returns it with its offer SDP (all candidates).
pub async fn offer(config: &RtcConfig, sink: EventSink) -> Result<(Conn, String), String> {
    let (pc, gathered) = build(config, sink.clone(), false).await?;
    let conn = Conn { pc, gathered };
    let made = async {
        let dc = conn
            .pc
            .create_data_channel("seedtab", None)
            .await
            .map_err(|e| format!("data channel: {e}"))?;
        tokio::spawn(pump(dc, sink));
        let offer = conn
            .pc
            .create_offer(None)
            .await
            .map_err(|e| format!("offer: {e}"))?;
        conn.pc
            .set_local_description(offer)
            .await
            .map_err(|e| format!("local offer: {e}"))
    }
    .await;
    with_local_sdp(conn, made).await
}

/// Answers a remote offer: returns the connection and the answer SDP (all candidates). The data
/// channel arrives from the offerer and is reported through `sink`.
pub async fn answer(
    config: &RtcConfig,
    offer_sdp: String,
    sink: EventSink,
) -> Result<(Conn, String), String> {
    let (pc, gathered) = build(config, sink, true).await?;
    let conn = Conn { pc, gathered };
    let made = async {
        let offer =
            RTCSessionDescription::offer(offer_sdp).map_err(|e| format!("bad offer: {e}"))?;
        conn.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| format!("offer refused: {e}"))?;
        let answer = conn
            .pc
            .create_answer(None)
            .await
            .map_err(|e| format!("answer: {e}"))?;
        conn.pc
            .set_local_description(answer)
            .await
            .map_err(|e| format!("local answer: {e}"))
    }
    .await;
    with_local_sdp(conn, made).await
}

/// Once the local description is set (`made`), the connection with its gathered SDP; a
/// connection that failed on the way is closed, never left to its driver.
async fn with_local_sdp(
    mut conn: Conn,
    made: Result<(), String>,
) -> Result<(Conn, String), String> {
    let sdp = match made {
        Ok(()) => conn.gathered_sdp().await,
        Err(e) => Err(e),
    };
    match sdp {
        Ok(sdp) => Ok((conn, sdp)),
        Err(e) => {
            conn.close().await;
            Err(e)
        }
    }
}

async fn build(
    config: &RtcConfig,
    sink: EventSink,
    answerer: bool,
) -> Result<(Arc<dyn PeerConnection>, watch::Receiver<bool>), String> {
    let settings = SettingEngineBuilder::new()
        .with_sctp_max_message_size(
            rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize::Bounded(
                MAX_MESSAGE_SIZE,
            ),
        )
        // Chromium's `.local` candidates still connect through peer-reflexive candidates, and
        // nothing here may send multicast.
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true)
        .with_sctp_mtu(SCTP_MTU)
        .build();
    let ice_servers = if config.ice_servers.is_empty() {
        Vec::new()
    } else {
        vec![RTCIceServer {
            urls: config.ice_servers.clone(),
            ..Default::default()
        }]
    };
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(ice_servers)
        .build();
    let (gathered_tx, gathered_rx) = watch::channel(false);
    let handler = Handler {
        sink,
        gathered: gathered_tx,
        answerer,
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_setting_engine(settings)
        .with_runtime(runtime())
        .with_handler(Arc::new(handler))
        .with_udp_addrs(config.bind.clone())
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    Ok((Arc::new(pc), gathered_rx))
}

struct Handler {
    sink: EventSink,
    gathered: watch::Sender<bool>,
    answerer: bool,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        // Disconnected may recover; these do not.
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            (self.sink)(ConnEvent::Closed(format!("connection {state}")));
        }
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        if self.answerer {
            // Spawned: polling here would block the connection's driver.
            tokio::spawn(pump(dc, self.sink.clone()));
        } else {
            let _ = dc.close().await;
        }
    }
}

/// Reads a channel's events until it closes.
async fn pump(dc: Arc<dyn DataChannel>, sink: EventSink) {
    let mut opened = false;
    while let Some(ev) = dc.poll().await {
        match ev {
            DataChannelEvent::OnOpen if !opened => {
                opened = true;
                sink(ConnEvent::Open(Channel::start(dc.clone(), sink.clone())));
            }
            DataChannelEvent::OnMessage(m) => sink(ConnEvent::Message(m.data.to_vec())),
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    sink(ConnEvent::Closed("data channel closed".into()));
}

fn runtime() -> Arc<dyn Runtime> {
    static RT: std::sync::OnceLock<Arc<dyn Runtime>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let inner = default_runtime().expect("webrtc built with its tokio runtime");
        Arc::new(BigBuffers { inner })
    })
    .clone()
}

/// The crate's tokio runtime, with larger UDP socket buffers.
#[derive(Debug)]
struct BigBuffers {
    inner: Arc<dyn Runtime>,
}

type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl Runtime for BigBuffers {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(&self, size: usize, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let s = socket2::SockRef::from(&socket);
        // Best effort: the OS caps these (net.core.rmem_max) and says nothing when it does.
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = s.set_send_buffer_size(SOCKET_BUFFER);
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn std::future::Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (big socket buffers)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn collector() -> (EventSink, mpsc::UnboundedReceiver<ConnEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let tx = Mutex::new(tx);
        let sink: EventSink = Arc::new(move |ev| {
            let _ = tx.lock().unwrap().send(ev);
        });
        (sink, rx)
    }

    async fn next_open(rx: &mut mpsc::UnboundedReceiver<ConnEvent>) -> Channel {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
                Ok(Some(ConnEvent::Open(c))) => return c,
                Ok(Some(ConnEvent::Closed(r))) => panic!("closed before open: {r}"),
                Ok(Some(_)) => {}
                other => panic!("no open: {}", other.is_ok()),
            }
        }
    }

    async fn read_exact(rx: &mut mpsc::UnboundedReceiver<ConnEvent>, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
                Ok(Some(ConnEvent::Message(m))) => got.extend(m),
                Ok(Some(ConnEvent::Closed(r))) => panic!("closed after {} bytes: {r}", got.len()),
                Ok(Some(_)) => {}
                other => panic!("stalled after {} bytes ({})", got.len(), other.is_ok()),
            }
        }
        got
    }

    /// Two native connections on loopback (no namespace needed) exchange exact bytes both ways.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loopback_pair_moves_exact_bytes_both_ways() {
        let config = RtcConfig {
            bind: vec!["127.0.0.1:0".into()],
            ice_servers: Vec::new(),
        };
        let (sink_a, mut rx_a) = collector();
        let (sink_b, mut rx_b) = collector();
        let (a, offer_sdp) = offer(&config, sink_a).await.expect("offer");
        assert!(offer_sdp.contains("a=candidate"), "{offer_sdp}");
        let (b, answer_sdp) = answer(&config, offer_sdp, sink_b).await.expect("answer");
        a.accept_answer(answer_sdp).await.expect("accept answer");
        let ch_a = next_open(&mut rx_a).await;
        let ch_b = next_open(&mut rx_b).await;

        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for chunk in data.chunks(64 * 1024) {
            assert!(ch_a.send(chunk.to_vec()));
        }
        assert_eq!(read_exact(&mut rx_b, data.len()).await, data);
        assert!(ch_b.send(b"pong".to_vec()));
        assert_eq!(read_exact(&mut rx_a, 4).await, b"pong");

        a.close().await;
        let closed = async {
            while let Some(ev) = rx_b.recv().await {
                if matches!(ev, ConnEvent::Closed(_)) {
                    return true;
                }
            }
            false
        };
        assert!(tokio::time::timeout(Duration::from_secs(20), closed)
            .await
            .unwrap_or(false));
        b.close().await;
    }
}
