//! Measures the embedded store: sequential save latency, save throughput with
//! concurrent conversations, and load latency. Prints figures, asserts nothing.
//!
//! Run with `cargo run -p lepton-store --release --example store_bench [FOLDER]`.
//! FOLDER defaults to the system temporary folder. Every save waits for an fsync,
//! so the figures mostly measure that disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::{Channel, ConversationId, Lang, Session, SessionStore};
use lepton_store::EmbeddedStore;
use tokio::task::JoinSet;

const TTL: Duration = Duration::from_secs(3600);
const SEQUENTIAL_SAVES: u32 = 200;
const CONVERSATIONS: u32 = 32;
const SAVES_PER_CONVERSATION: u32 = 20;

fn session(id: &str) -> Session {
    let mut session = Session::new(ConversationId::new(id), Channel::new("web"), Lang::new("en"), 0);
    session.slots.insert("order_number".into(), "123456".to_owned());
    session.slots.insert("address".into(), "上海市浦东新区世纪大道 100 号".to_owned());
    session
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = folder.join(format!("lepton-store-bench-{}", std::process::id())).join("sessions.redb");
    let store = Arc::new(EmbeddedStore::open(&path)?);

    let current = session("bench:sequential");
    let mut version = 0;
    let started = Instant::now();
    for _ in 0..SEQUENTIAL_SAVES {
        version = store.save(&current, version, TTL).await?;
    }
    let elapsed = started.elapsed();
    println!("sequential save: {:.2} ms each over {SEQUENTIAL_SAVES} saves", elapsed.as_secs_f64() * 1000.0 / f64::from(SEQUENTIAL_SAVES));

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..CONVERSATIONS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let current = session(&format!("bench:parallel-{n}"));
            let mut version = 0;
            for _ in 0..SAVES_PER_CONVERSATION {
                version = store.save(&current, version, TTL).await?;
            }
            Ok::<_, bot_core::StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let total = CONVERSATIONS * SAVES_PER_CONVERSATION;
    let elapsed = started.elapsed();
    println!("concurrent save: {:.0} saves/s ({total} saves from {CONVERSATIONS} conversations)", f64::from(total) / elapsed.as_secs_f64());

    let id = ConversationId::new("bench:sequential");
    let started = Instant::now();
    for _ in 0..SEQUENTIAL_SAVES {
        store.load(&id).await?;
    }
    let elapsed = started.elapsed();
    println!("load: {:.3} ms each over {SEQUENTIAL_SAVES} loads", elapsed.as_secs_f64() * 1000.0 / f64::from(SEQUENTIAL_SAVES));

    drop(store);
    if let Some(parent) = path.parent() {
        std::fs::remove_dir_all(parent)?;
    }
    Ok(())
}
