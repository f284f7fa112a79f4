use std::collections::VecDeque;

use bot_core::session::{DialogState, ProcessedMessage, SESSION_SCHEMA_VERSION};
use bot_core::{Channel, ConversationId, HandoffState, Lang, Session, SessionStore};
use lepton_store::EmbeddedStore;
use redb::{Database, ReadableDatabase};

use crate::common::{session, write_raw_session, TempFolder, SESSIONS};

const FIXTURE_V1: &str = include_str!("../fixtures/session-v1.json");
const FIXTURE_V2: &str = include_str!("../fixtures/session-v2.json");
const FIXTURE_V3: &str = include_str!("../fixtures/session-v3.json");

/// The session both fixtures contain.
fn fixture_session() -> Session {
    let mut session = Session::new(ConversationId::new("web:7f3a9c"), Channel::new("web"), Lang::new("zh"), 1_767_225_600_000);
    session.slots.insert("address".into(), "上海市浦东新区世纪大道 100 号".to_owned());
    session.slots.insert("order_number".into(), "123456".to_owned());
    session.dialog = DialogState::AwaitingSlot { flow: "change_address".into(), step: 2, slot: None, attempts: 1 };
    session.handoff = HandoffState::Bot;
    session.turns = 4;
    session.next_seq = 9;
    session.recent_messages = VecDeque::from([
        ProcessedMessage { client_message_id: "m-3".into(), first_seq: 5, last_seq: 6 },
        ProcessedMessage { client_message_id: "m-4".into(), first_seq: 7, last_seq: 8 },
    ]);
    session.updated_at = 1_767_225_720_000;
    session
}

async fn load_fixture(fixture: &str) -> anyhow::Result<()> {
    let folder = TempFolder::new("fixture")?;
    let path = folder.store_path();
    drop(EmbeddedStore::open(&path)?);
    write_raw_session(&path, "web:7f3a9c", fixture.as_bytes())?;
    let store = EmbeddedStore::open(&path)?;

    let loaded = store.load(&ConversationId::new("web:7f3a9c")).await?;
    let loaded = loaded.ok_or_else(|| anyhow::anyhow!("the fixture session did not load"))?;
    assert_eq!(loaded.version, 7, "store version of the fixture");
    assert_eq!(loaded.session, fixture_session(), "fixture session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_fixture_loads() -> anyhow::Result<()> {
    load_fixture(FIXTURE_V1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_fixture_loads() -> anyhow::Result<()> {
    load_fixture(FIXTURE_V2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_fixture_loads() -> anyhow::Result<()> {
    load_fixture(FIXTURE_V3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_record_has_fixture_layout() -> anyhow::Result<()> {
    let folder = TempFolder::new("layout")?;
    let path = folder.store_path();
    {
        let store = EmbeddedStore::open(&path)?;
        store.save(&session("web:layout"), 0, std::time::Duration::from_secs(600)).await?;
    }

    let db = Database::create(&path)?;
    let txn = db.begin_read()?;
    let bytes = txn.open_table(SESSIONS)?.get("web:layout")?.ok_or_else(|| anyhow::anyhow!("no record"))?.value().to_vec();
    let record: serde_json::Value = serde_json::from_slice(&bytes)?;
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE_V3)?;

    let keys = |value: &serde_json::Value| value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&record), keys(&fixture), "record fields");
    assert_eq!(keys(&record["session"]), keys(&fixture["session"]), "session fields");
    assert_eq!(record["session"]["schema_version"], SESSION_SCHEMA_VERSION, "schema version");
    assert_eq!(record["version"], 1, "store version");
    Ok(())
}
