//! A Redis server that dies and comes back. Calls fail fast during the outage
//! and succeed afterwards without a manual reconnect, and the feed reports that
//! it may have missed events.

use std::time::Duration;

use bot_core::{ConversationId, RemoteEvents, SessionStore, StoreError};
use lepton_redis::{RedisConfig, RedisStore, RedisStoreError};
use tracing::Level;

use crate::common::{session, within, TTL};
use crate::logs::Capture;
use crate::remote::subscribed_feed;
use crate::server::TestRedis;

const PASSWORD: &str = "s3cret-test-pass";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_calls_and_feed() -> anyhow::Result<()> {
    let mut redis = TestRedis::start_with_password(Some(PASSWORD))?;
    if let Some(reason) = redis.not_own_server() {
        println!("skipped restart_recovers_calls_and_feed: {reason}");
        return Ok(());
    }
    let store = RedisStore::connect(redis.config("outage")).await?;
    let mut feed = subscribed_feed(&store).await?;
    let id = ConversationId::new("web:outage");
    store.save(&session(id.as_str()), 0, TTL).await?;

    redis.kill()?;
    for attempt in 0..3 {
        let during = within("a load during the outage", store.load(&id)).await?;
        let reason = match during {
            Err(StoreError::Unavailable { reason }) => reason,
            other => anyhow::bail!("load {attempt} during the outage returned {other:?}, expected Unavailable"),
        };
        assert!(!reason.contains(PASSWORD), "reason contains the password: {reason}");
    }

    redis.restart()?;
    // The restarted server kept nothing, so the session is gone.
    let after = within("a load after the restart", store.load(&id)).await?;
    assert!(matches!(after, Ok(None)), "load after the restart returned {after:?}");
    let saved = within("a save after the restart", store.save(&session(id.as_str()), 0, TTL)).await?;
    assert!(saved.is_ok(), "save after the restart returned {saved:?}");
    let notice = within("the feed's notice", feed.recv()).await?;
    assert_eq!(notice, Some(RemoteEvents::MaybeMissed), "feed message after the restart");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_password_recovers_after_fix() -> anyhow::Result<()> {
    let mut redis = TestRedis::start_with_password(Some(PASSWORD))?;
    if let Some(reason) = redis.not_own_server() {
        println!("skipped rejected_password_recovers_after_fix: {reason}");
        return Ok(());
    }
    let store = RedisStore::connect(redis.config("auth")).await?;
    let id = ConversationId::new("web:auth");

    // The server comes back without its password, so the store's AUTH is
    // rejected, then it is configured again.
    redis.restart_with_password(None)?;
    let rejected = within("a load while AUTH is rejected", store.load(&id)).await?;
    redis.restart_with_password(Some(PASSWORD))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut recovered = false;
    while tokio::time::Instant::now() < deadline {
        if within("a load after the fix", store.load(&id)).await?.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(matches!(rejected, Err(StoreError::Unavailable { .. })), "load while AUTH is rejected returned {rejected:?}");
    assert!(recovered, "calls still fail 15 s after the server accepts the password again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_unreachable_fails_clearly() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = RedisConfig {
        url: format!("redis://:{PASSWORD}@127.0.0.1:{port}/0"),
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        ..RedisConfig::default()
    };

    let error = match within("connect", RedisStore::connect(config)).await? {
        Err(error @ RedisStoreError::Connect { .. }) => error,
        Err(other) => anyhow::bail!("connect returned {other}, expected Connect"),
        Ok(_) => anyhow::bail!("connect succeeded to a closed port"),
    };
    let message = error.to_string();
    assert!(message.contains(&format!("redis://:***@127.0.0.1:{port}/0")), "message: {message}");
    assert!(!message.contains(PASSWORD), "message contains the password: {message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_rejects_other_scheme() -> anyhow::Result<()> {
    let config = RedisConfig { url: "http://user:pw@127.0.0.1:6379".to_owned(), ..RedisConfig::default() };

    let message = match RedisStore::connect(config).await {
        Err(error @ RedisStoreError::InvalidUrl { .. }) => error.to_string(),
        Err(other) => anyhow::bail!("connect returned {other}, expected InvalidUrl"),
        Ok(_) => anyhow::bail!("connect accepted an http URL"),
    };
    assert!(message.contains("rediss://"), "message does not name the accepted forms: {message}");
    assert!(!message.contains("pw@"), "message contains the password: {message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_connect() -> anyhow::Result<()> {
    let redis = TestRedis::start_with_password(Some(PASSWORD))?;
    if let Some(reason) = redis.not_own_server() {
        println!("skipped wrong_password_fails_connect: {reason}");
        return Ok(());
    }
    let url = redis.url().replace(PASSWORD, "wrong-password");

    let result = RedisStore::connect(RedisConfig { url, ..redis.config("wrong-password") }).await;

    assert!(matches!(result, Err(RedisStoreError::Connect { .. })), "connect returned {:?}", result.err());
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn outage_logged_once() -> anyhow::Result<()> {
    let mut redis = TestRedis::start()?;
    if let Some(reason) = redis.not_own_server() {
        println!("skipped outage_logged_once: {reason}");
        return Ok(());
    }
    let capture = Capture::default();
    let _guard = capture.install();
    let store = RedisStore::connect(redis.config("logged")).await?;
    let id = ConversationId::new("web:logged");

    redis.kill()?;
    for _ in 0..5 {
        let during = within("a load during the outage", store.load(&id)).await?;
        anyhow::ensure!(during.is_err(), "a load succeeded with the server killed");
    }
    redis.restart()?;
    within("a load after the restart", store.load(&id)).await??;

    let errors = capture.at_least(Level::ERROR);
    let warnings: Vec<_> = capture.at_least(Level::WARN).into_iter().filter(|e| e.level == Level::WARN).collect();
    assert_eq!(errors.len(), 1, "ERROR events {errors:?}");
    assert_eq!(warnings.len(), 1, "WARN events {warnings:?}");
    assert!(warnings[0].fields.contains("failed_calls=5 "), "WARN fields {}", warnings[0].fields);
    Ok(())
}
