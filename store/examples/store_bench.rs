//! Measures the embedded store: `commit_turn` (a session, two transcript events
//! and a waiting-queue change every tenth turn) at concurrency 1 and 16 under
//! both sync policies, the time of a `flush`, and `load` latency. Prints
//! figures, asserts nothing.
//!
//! Run with `cargo run -p lepton-store --release --example store_bench [FOLDER]`.
//! FOLDER defaults to the system temporary folder. Under `SyncPolicy::EveryWrite`
//! every transaction waits for an fsync, so those figures mostly measure that
//! disk. Concurrent turns share transactions, so concurrency 16 takes more
//! turns per second than concurrency 1.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::classify::ScoredIntent;
use bot_core::event::{Event, EventKind, Understanding};
use bot_core::message::{Content, Reply};
use bot_core::session::{DialogState, ProcessedMessage};
use bot_core::{Channel, ConversationId, Lang, Session, SessionStore, TurnCommit};
use lepton_store::{EmbeddedStore, SyncPolicy};
use tokio::task::JoinSet;

const TTL: Duration = Duration::from_secs(3600);
const LOADS: u32 = 2_000;

/// Builds one conversation's session after `turn` turns in the middle of a form.
fn session(id: &str, turn: u64) -> Session {
    let mut session = Session::new(ConversationId::new(id), Channel::new("web"), Lang::new("zh"), 0);
    session.slots.insert("order_number".into(), "123456".to_owned());
    session.slots.insert("address".into(), "上海市浦东新区世纪大道 100 号".to_owned());
    session.dialog = DialogState::AwaitingSlot { flow: "change_address".into(), step: 2, slot: Some("address".into()), attempts: 0 };
    session.turns = turn;
    session.next_seq = 2 * turn + 1;
    session.recent_messages = (turn.saturating_sub(7).max(1)..=turn)
        .map(|n| ProcessedMessage { client_message_id: format!("m-{n}").into(), first_seq: 2 * n - 1, last_seq: 2 * n })
        .collect::<VecDeque<_>>();
    session
}

/// Builds the customer message and the bot reply of turn `turn`.
fn turn_events(id: &str, turn: u64) -> Vec<Event> {
    let conversation_id = ConversationId::new(id);
    let understanding = Understanding {
        ranking: vec![
            ScoredIntent { intent: "change_address".into(), confidence: 0.91 },
            ScoredIntent { intent: "order_status".into(), confidence: 0.05 },
            ScoredIntent { intent: "refund".into(), confidence: 0.02 },
        ],
        intent: Some("change_address".into()),
        knowledge_source: None,
        slots: [("order_number".into(), "123456".to_owned())].into(),
    };
    let customer = EventKind::Customer {
        channel: Channel::new("web"),
        sender: "visitor-1".into(),
        content: Content::Text("我想把订单 123456 的收货地址改成上海市浦东新区世纪大道 100 号".to_owned()),
        client_message_id: Some(format!("m-{turn}").into()),
        understanding: Some(understanding),
    };
    let reply = EventKind::Reply(Reply::bot("好的，请确认新的收货地址：上海市浦东新区世纪大道 100 号。"));
    vec![
        Event { conversation_id: conversation_id.clone(), seq: 2 * turn - 1, at: 0, kind: customer },
        Event { conversation_id, seq: 2 * turn, at: 0, kind: reply },
    ]
}

/// The measurements of one run of concurrent writers.
struct Figures {
    turns: usize,
    elapsed: Duration,
    /// Latency of each `commit_turn`, sorted.
    latencies: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, fraction: f64) -> Duration {
        let index = ((self.latencies.len() as f64 * fraction).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[index]
    }

    fn print(&self, label: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label}: {:>7.0} turns/s  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} turns)",
            self.turns as f64 / self.elapsed.as_secs_f64(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
            self.turns
        );
    }
}

/// Runs `concurrency` tasks that each take `turns` turns of their own conversation.
async fn commit_turns(store: &Arc<EmbeddedStore>, run: &str, concurrency: usize, turns: u64) -> Result<Figures, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let store = Arc::clone(store);
        let id = format!("bench:{run}-{task}");
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(turns as usize);
            let mut version = 0;
            for turn in 1..=turns {
                let session = session(&id, turn);
                let events = turn_events(&id, turn);
                let waiting = (turn % 10 == 0).then_some(Some(turn));
                let commit = TurnCommit { session: &session, expected: version, events: &events, waiting, ttl: TTL };
                let before = Instant::now();
                version = store.commit_turn(commit).await?;
                latencies.push(before.elapsed());
            }
            Ok::<_, bot_core::StoreError>(latencies)
        });
    }

    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Figures { turns: latencies.len(), elapsed, latencies })
}

async fn bench_policy(folder: &Path, name: &str, policy: SyncPolicy, turns: u64) -> Result<(), Box<dyn std::error::Error>> {
    let path = folder.join(name).join("sessions.redb");
    let store = Arc::new(EmbeddedStore::open_with(&path, policy)?);
    println!("{name} ({policy:?}):");

    // A short warm-up so that the file and the blocking thread pool exist.
    commit_turns(&store, "warm-up", 4, 10).await?;
    commit_turns(&store, "c1", 1, turns).await?.print("  commit_turn, concurrency  1");
    commit_turns(&store, "c16", 16, turns / 4).await?.print("  commit_turn, concurrency 16");

    let before = Instant::now();
    commit_turns(&store, "before-flush", 1, 1).await?;
    store.flush().await?;
    println!("  one commit_turn then flush: {:.3} ms", before.elapsed().as_secs_f64() * 1000.0);

    let id = ConversationId::new("bench:c1-0");
    let before = Instant::now();
    for _ in 0..LOADS {
        store.load(&id).await?;
    }
    println!("  load: {:.3} ms each over {LOADS} loads", before.elapsed().as_secs_f64() * 1000.0 / f64::from(LOADS));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parent = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let folder = parent.join(format!("lepton-store-bench-{}", std::process::id()));

    let result = async {
        bench_policy(&folder, "periodic", SyncPolicy::Periodic(lepton_store::DEFAULT_FLUSH_INTERVAL), 4_000).await?;
        bench_policy(&folder, "every-write", SyncPolicy::EveryWrite, 400).await
    }
    .await;
    std::fs::remove_dir_all(&folder)?;
    result
}
