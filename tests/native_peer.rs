//! The native peer end to end, in one process and on loopback only: a real tracker
//! (`native::tracker`), real WebRTC data channels (`webrtc` crate) bound to 127.0.0.1, real files.
//! A seeder made from files on disk serves a magnet-link download; a second run resumes from what
//! the first left on disk; reward receipts go from the downloader's key to the seeder's file; and
//! `stopped` reaches the tracker on the way out.
#![cfg(feature = "native")]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use seedtab::create::CreateOptions;
use seedtab::engine::Config;
use seedtab::metainfo::Metainfo;
use seedtab::native::create::{
    collect_files, create_from_disk, default_state_path, open_seed_store,
};
use seedtab::native::peer::{self, NativeRewards, Outcome, Start};
use seedtab::native::report::{Mode, Reporter};
use seedtab::native::rtc::RtcConfig;
use seedtab::native::tracker::{router, TrackerService};
use seedtab::receipt::{self, SignedReceipt};
use seedtab::store::FileStore;
use seedtab::testdir::TempDir;
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(60);

fn data(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn start_tracker() -> (String, Arc<TrackerService>) {
    let service = TrackerService::new(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = router(service.clone(), true);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("ws://{addr}/announce"), service)
}

fn options(tracker: &str, keep_seeding: bool, rewards: Option<NativeRewards>) -> peer::Options {
    peer::Options {
        trackers: vec![tracker.to_string()],
        rtc: RtcConfig {
            bind: vec!["127.0.0.1:0".into()],
            ice_servers: Vec::new(),
        },
        keep_seeding,
        rewards,
        engine: Config::default(),
    }
}

/// Seeds `files_dir/name` from disk until the returned sender fires.
fn start_seeder(
    path: PathBuf,
    tracker: &str,
    piece_length: u32,
    rewards: Option<NativeRewards>,
) -> (
    Metainfo,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Outcome>,
) {
    let (_, files) = collect_files(std::slice::from_ref(&path)).unwrap();
    let opts = CreateOptions {
        piece_length: Some(piece_length),
        ..CreateOptions::default()
    };
    let meta = create_from_disk(&files, opts, &mut |_, _| {}).unwrap();
    let state = default_state_path(&meta, path.parent().unwrap());
    let (store, have) = open_seed_store(&files, &meta, state).unwrap();
    assert!(have.is_complete());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let start = Start::Torrent {
        meta: meta.clone(),
        store,
        have,
    };
    let opts = options(tracker, true, rewards);
    // The session is not Send (its store is a plain trait object): a local task, as in the CLI.
    let task = tokio::task::spawn_local(async move {
        let mut reporter = Reporter::new(Mode::Quiet, false);
        peer::run(start, opts, &mut reporter, async {
            let _ = stop_rx.await;
        })
        .await
    });
    (meta, stop_tx, task)
}

async fn get(start: Start, tracker: &str, rewards: Option<NativeRewards>) -> Outcome {
    let mut reporter = Reporter::new(Mode::Quiet, false);
    let run = peer::run(
        start,
        options(tracker, false, rewards),
        &mut reporter,
        std::future::pending(),
    );
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the download stalled")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn assert_same(a: &Path, b: &[u8]) {
    let got = fs::read(a).unwrap();
    assert!(
        got == b,
        "{} differs ({} bytes vs {})",
        a.display(),
        got.len(),
        b.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_download_from_a_native_seeder_then_resume_and_stopped() {
    tokio::task::LocalSet::new()
        .run_until(magnet_then_resume_then_stopped())
        .await;
}

async fn magnet_then_resume_then_stopped() {
    let (tracker, service) = start_tracker().await;
    let src = TempDir::new("src");
    let bytes = data(3 << 20, 7);
    let file = src.0.join("clip.bin");
    fs::write(&file, &bytes).unwrap();
    let (meta, stop, seeder) = start_seeder(file, &tracker, 32 * 1024, None);

    // 1. A magnet link only: the metadata comes from the seeder, the files go under `out`.
    let out = TempDir::new("out");
    let outcome = get(
        Start::Magnet {
            info_hash: meta.info_hash,
            dir: out.0.clone(),
        },
        &tracker,
        None,
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Complete {
            downloaded: bytes.len() as u64
        }
    );
    assert_same(&out.0.join("clip.bin"), &bytes);
    // The metadata was kept for resuming a magnet download.
    let saved = peer::saved_metainfo(&out.0, &meta.info_hash).expect("metadata saved");
    assert_eq!(saved.info_hash, meta.info_hash);

    // 2. Resume: half the file damaged and the state file gone, as after a crash mid-write.
    let target = out.0.join("clip.bin");
    let mut damaged = bytes.clone();
    for b in &mut damaged[bytes.len() / 2..] {
        *b = 0;
    }
    fs::write(&target, &damaged).unwrap();
    fs::remove_file(FileStore::state_path_in(&out.0, &meta)).unwrap();
    let (store, have) = FileStore::open_verify(&out.0, &saved).unwrap();
    let kept = have.count();
    assert!(kept > 0 && !have.is_complete(), "kept {kept} pieces");
    let outcome = get(
        Start::Torrent {
            meta: saved.clone(),
            store,
            have,
        },
        &tracker,
        None,
    )
    .await;
    let Outcome::Complete { downloaded } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        downloaded <= bytes.len() as u64 / 2 + 32 * 1024,
        "only the missing half is fetched again, not {downloaded} bytes"
    );
    assert_same(&target, &bytes);

    // 3. Stopping the seeder announces `stopped`: the tracker forgets both peers at once,
    // without waiting for its expiry sweep.
    stop.send(()).unwrap();
    assert_eq!(
        tokio::time::timeout(DEADLINE, seeder)
            .await
            .unwrap()
            .unwrap(),
        Outcome::Stopped
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.stats().peers > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tracker still lists {} peers",
            service.stats().peers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_downloader_signs_receipts_the_native_seeder_keeps() {
    tokio::task::LocalSet::new()
        .run_until(receipts_between_native_peers())
        .await;
}

async fn receipts_between_native_peers() {
    let (tracker, _service) = start_tracker().await;
    let src = TempDir::new("rsrc");
    let bytes = data(2 << 20, 11);
    let file = src.0.join("album.bin");
    fs::write(&file, &bytes).unwrap();
    let receipts = src.0.join("receipts.jsonl");
    let seeder_key = [5u8; 32];
    let downloader_key = [9u8; 32];
    let (meta, stop, seeder) = start_seeder(
        file,
        &tracker,
        64 * 1024,
        Some(NativeRewards {
            seed: seeder_key,
            receipts_file: Some(receipts.clone()),
        }),
    );
    let out = TempDir::new("rout");
    let outcome = get(
        Start::Magnet {
            info_hash: meta.info_hash,
            dir: out.0.clone(),
        },
        &tracker,
        Some(NativeRewards {
            seed: downloader_key,
            receipts_file: None,
        }),
    )
    .await;
    assert!(matches!(outcome, Outcome::Complete { .. }), "{outcome:?}");
    assert_same(&out.0.join("album.bin"), &bytes);

    // The final receipt (signed at completion) reaches the seeder within the downloader's linger.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let last = loop {
        let text = fs::read_to_string(&receipts).unwrap_or_default();
        let last = text.lines().last().map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let hex = v["receipt"].as_str().unwrap().to_string();
            SignedReceipt::decode_verified(&unhex(&hex)).unwrap()
        });
        if let Some(r) = last.filter(|r| r.receipt.bytes == bytes.len() as u64) {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no receipt for the whole file in {}",
            receipts.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last.receipt.uploader, receipt::public_key(&seeder_key));
    assert_eq!(
        last.receipt.downloader,
        receipt::public_key(&downloader_key)
    );
    assert_eq!(last.receipt.info_hash, *meta.info_hash.as_bytes());
    assert_eq!(last.receipt.length, bytes.len() as u64);

    stop.send(()).unwrap();
    let _ = tokio::time::timeout(DEADLINE, seeder).await;
}
