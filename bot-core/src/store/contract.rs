//! The contract every [`SessionStore`] implementation must meet. Each store's
//! tests call [`run_all`] with a fresh, empty store.

use std::time::Duration;

use crate::event::{Event, EventKind};
use crate::ids::{Channel, ConversationId, Lang};
use crate::message::{now_millis, Reply};
use crate::session::{DialogState, Session};
use crate::store::{SessionStore, StoreError, UnrecognisedMessage, MAX_UNRECOGNISED};

/// A contract violation: which check failed and how.
#[derive(Debug, thiserror::Error)]
#[error("store contract check `{check}` failed: {detail}")]
pub struct ContractFailure {
    pub check: &'static str,
    pub detail: String,
}

fn fail(check: &'static str, detail: impl Into<String>) -> ContractFailure {
    ContractFailure { check, detail: detail.into() }
}

fn session(id: &str) -> Session {
    Session::new(ConversationId::new(id), Channel::new("web"), Lang::new("en"), now_millis())
}

fn reply_event(id: &str, seq: u64) -> Event {
    Event { conversation_id: ConversationId::new(id), seq, at: now_millis(), kind: EventKind::Reply(Reply::bot(format!("reply {seq}"))) }
}

const TTL: Duration = Duration::from_secs(60);

/// Runs every contract check against `store`, which must start empty.
pub async fn run_all(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    round_trip(store).await?;
    compare_and_set(store).await?;
    transcript(store).await?;
    waiting_queue(store).await?;
    expiry(store).await?;
    unicode(store).await?;
    unrecognised(store).await?;
    ping(store).await?;
    Ok(())
}

/// A reachable store answers the readiness ping.
async fn ping(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    store.ping().await.map_err(|e| fail("ping", e.to_string()))
}

async fn round_trip(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let id = ConversationId::new("contract-round-trip");
    let loaded = store.load(&id).await.map_err(|e| fail("round_trip", e.to_string()))?;
    if loaded.is_some() {
        return Err(fail("round_trip", "an unknown conversation loaded a session"));
    }

    let mut session = session(id.as_str());
    session.dialog = DialogState::AwaitingSlot { flow: "order".into(), step: 2, slot: Some("order_number".into()), attempts: 1 };
    session.slots.insert("order_number".into(), "123456".to_owned());
    let version = store.save(&session, 0, TTL).await.map_err(|e| fail("round_trip", e.to_string()))?;
    let loaded = store.load(&id).await.map_err(|e| fail("round_trip", e.to_string()))?;
    let loaded = loaded.ok_or_else(|| fail("round_trip", "a saved session did not load"))?;
    if loaded.version != version {
        return Err(fail("round_trip", format!("saved version {version}, loaded version {}", loaded.version)));
    }
    if loaded.session != session {
        return Err(fail("round_trip", format!("loaded {:?}, saved {:?}", loaded.session, session)));
    }
    Ok(())
}

async fn compare_and_set(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let session = session("contract-cas");
    let first = store.save(&session, 0, TTL).await.map_err(|e| fail("compare_and_set", e.to_string()))?;
    match store.save(&session, 0, TTL).await {
        Err(StoreError::Conflict { .. }) => {}
        other => return Err(fail("compare_and_set", format!("a second create returned {other:?}, expected a conflict"))),
    }

    let second = store.save(&session, first, TTL).await.map_err(|e| fail("compare_and_set", e.to_string()))?;
    if second <= first {
        return Err(fail("compare_and_set", format!("version went from {first} to {second}")));
    }
    match store.save(&session, first, TTL).await {
        Err(StoreError::Conflict { actual, .. }) if actual == second => Ok(()),
        other => Err(fail("compare_and_set", format!("a stale write returned {other:?}, expected a conflict at {second}"))),
    }
}

async fn transcript(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let id = ConversationId::new("contract-transcript");
    let first: Vec<Event> = (1..=3).map(|seq| reply_event(id.as_str(), seq)).collect();
    let second: Vec<Event> = (4..=5).map(|seq| reply_event(id.as_str(), seq)).collect();
    store.append_events(&id, &first, TTL).await.map_err(|e| fail("transcript", e.to_string()))?;
    store.append_events(&id, &second, TTL).await.map_err(|e| fail("transcript", e.to_string()))?;

    let all = store.events(&id, 0, 100).await.map_err(|e| fail("transcript", e.to_string()))?;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    if seqs != [1, 2, 3, 4, 5] {
        return Err(fail("transcript", format!("read sequence numbers {seqs:?}, expected 1 to 5")));
    }
    let tail = store.events(&id, 3, 1).await.map_err(|e| fail("transcript", e.to_string()))?;
    if tail.len() != 1 || tail[0] != second[0] {
        return Err(fail("transcript", format!("events after 3 limited to 1 returned {tail:?}")));
    }
    Ok(())
}

async fn waiting_queue(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let early = ConversationId::new("contract-waiting-early");
    let late = ConversationId::new("contract-waiting-late");
    let map = |e: StoreError| fail("waiting_queue", e.to_string());
    store.set_waiting(&late, Some(2_000)).await.map_err(map)?;
    store.set_waiting(&early, Some(1_000)).await.map_err(map)?;
    let waiting = store.waiting().await.map_err(map)?;
    if waiting != vec![(early.clone(), 1_000), (late.clone(), 2_000)] {
        return Err(fail("waiting_queue", format!("listed {waiting:?}, expected early then late")));
    }

    store.set_waiting(&early, None).await.map_err(map)?;
    let waiting = store.waiting().await.map_err(map)?;
    if waiting != vec![(late.clone(), 2_000)] {
        return Err(fail("waiting_queue", format!("after removal listed {waiting:?}")));
    }
    store.set_waiting(&late, None).await.map_err(map)?;
    Ok(())
}

async fn expiry(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let session = session("contract-expiry");
    let id = session.conversation_id.clone();
    let short = Duration::from_millis(200);
    store.save(&session, 0, short).await.map_err(|e| fail("expiry", e.to_string()))?;
    store.append_events(&id, &[reply_event(id.as_str(), 1)], short).await.map_err(|e| fail("expiry", e.to_string()))?;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let loaded = store.load(&id).await.map_err(|e| fail("expiry", e.to_string()))?;
    if loaded.is_some() {
        return Err(fail("expiry", "a session loaded after its TTL"));
    }
    let events = store.events(&id, 0, 10).await.map_err(|e| fail("expiry", e.to_string()))?;
    if !events.is_empty() {
        return Err(fail("expiry", format!("{} events read after their TTL", events.len())));
    }
    // An expired session counts as absent, so a new one is created at version 0,
    // and its old transcript stays gone.
    store.save(&session, 0, TTL).await.map_err(|e| fail("expiry", format!("re-creating an expired session: {e}")))?;
    let events = store.events(&id, 0, 10).await.map_err(|e| fail("expiry", e.to_string()))?;
    if !events.is_empty() {
        return Err(fail("expiry", format!("{} expired events came back after the session was re-created", events.len())));
    }
    Ok(())
}

async fn unicode(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let mut session = session("contract-会话-🙂");
    session.slots.insert("address".into(), "上海市浦东新区 \u{0}\t\"quoted\" 🙂".to_owned());
    store.save(&session, 0, TTL).await.map_err(|e| fail("unicode", e.to_string()))?;
    let loaded = store.load(&session.conversation_id).await.map_err(|e| fail("unicode", e.to_string()))?;
    match loaded {
        Some(loaded) if loaded.session == session => Ok(()),
        other => Err(fail("unicode", format!("loaded {other:?}"))),
    }
}

fn unrecognised_message(id: &str, seq: u64, text: &str) -> UnrecognisedMessage {
    UnrecognisedMessage {
        conversation_id: ConversationId::new(id),
        seq,
        text: text.to_owned(),
        lang: Lang::new("zh"),
        channel: Channel::new("web"),
        at: now_millis(),
    }
}

fn listed_keys(listed: &[UnrecognisedMessage]) -> Vec<(String, u64)> {
    listed.iter().map(|m| (m.conversation_id.to_string(), m.seq)).collect()
}

async fn unrecognised(store: &dyn SessionStore) -> Result<(), ContractFailure> {
    let map = |e: StoreError| fail("unrecognised", e.to_string());
    let listed = store.unrecognised(10).await.map_err(map)?;
    if !listed.is_empty() {
        return Err(fail("unrecognised", format!("an empty store listed {listed:?}")));
    }

    let first = unrecognised_message("contract-unrecognised-a", 1, "blorp \"quoted\" 🙂");
    let second = unrecognised_message("contract-unrecognised-b", 3, "能不能开发票");
    let third = unrecognised_message("contract-unrecognised-a", 5, "zzz");
    for message in [&first, &second, &third] {
        store.record_unrecognised(message).await.map_err(map)?;
    }
    let listed = store.unrecognised(10).await.map_err(map)?;
    if listed != vec![third.clone(), second.clone(), first.clone()] {
        return Err(fail("unrecognised", format!("listed {listed:?}, expected the three messages newest first")));
    }
    let limited = store.unrecognised(2).await.map_err(map)?;
    if listed_keys(&limited) != listed_keys(&listed[..2]) {
        return Err(fail("unrecognised", format!("limited to 2 listed {limited:?}")));
    }

    store.record_unrecognised(&first).await.map_err(map)?;
    let listed = store.unrecognised(10).await.map_err(map)?;
    if listed.len() != 3 || listed[0] != first {
        return Err(fail("unrecognised", format!("recording a message again listed {listed:?}, expected it once and first")));
    }

    let dismissed = store.dismiss_unrecognised(&second.conversation_id, second.seq).await.map_err(map)?;
    let again = store.dismiss_unrecognised(&second.conversation_id, second.seq).await.map_err(map)?;
    let listed = store.unrecognised(10).await.map_err(map)?;
    if !dismissed || again {
        return Err(fail("unrecognised", format!("dismissing returned {dismissed}, then {again}; expected true, then false")));
    }
    if listed != vec![first.clone(), third.clone()] {
        return Err(fail("unrecognised", format!("after dismissing listed {listed:?}")));
    }

    for seq in 0..MAX_UNRECOGNISED as u64 {
        store.record_unrecognised(&unrecognised_message("contract-unrecognised-many", seq, "x")).await.map_err(map)?;
    }
    let listed = store.unrecognised(MAX_UNRECOGNISED + 10).await.map_err(map)?;
    let newest = listed.first().map(|m| m.seq);
    let oldest = listed.last().map(|m| m.seq);
    if listed.len() != MAX_UNRECOGNISED || newest != Some(MAX_UNRECOGNISED as u64 - 1) || oldest != Some(0) {
        return Err(fail(
            "unrecognised",
            format!("after {MAX_UNRECOGNISED} more messages listed {} from seq {newest:?} to {oldest:?}", listed.len()),
        ));
    }
    Ok(())
}
