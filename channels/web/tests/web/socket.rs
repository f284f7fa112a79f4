//! The customer WebSocket: replay, live delivery, reconnects and shutdown.

use std::time::Duration;

use anyhow::{bail, Result};
use futures_util::{SinkExt, StreamExt};
use lepton_web::{AllowedOrigins, WebConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{conversation, expect_silence, next_events, seqs, text_of, TestServer, FRAME_TIMEOUT};

#[tokio::test]
async fn socket_delivers_posted_message_and_reply() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("ws-live");
    let mut socket = server.connect(&id, 0).await?;

    let posted = server.say(&id, "hello").await?;
    let received = next_events(&mut socket, 2).await?;

    assert_eq!(received, posted);
    assert_eq!(text_of(&received[1]), Some("Hello! How can I help?"));
    Ok(())
}

#[tokio::test]
async fn socket_replays_transcript_then_streams() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("ws-replay");
    server.say(&id, "hello").await?;

    let mut socket = server.connect(&id, 0).await?;
    let replayed = next_events(&mut socket, 2).await?;
    server.say(&id, "order").await?;
    let live = next_events(&mut socket, 2).await?;

    assert_eq!(seqs(&replayed), vec![1, 2]);
    assert_eq!(seqs(&live), vec![3, 4]);
    Ok(())
}

#[tokio::test]
async fn reconnect_with_after_replays_only_missed_events() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("ws-reconnect");
    let mut first = server.connect(&id, 0).await?;
    server.say(&id, "hello").await?;
    let seen = next_events(&mut first, 2).await?;
    first.close(None).await?;

    server.say(&id, "order").await?;
    let mut second = server.connect(&id, seen[1].seq).await?;
    let missed = next_events(&mut second, 2).await?;
    server.say(&id, "hello").await?;
    let live = next_events(&mut second, 2).await?;

    assert_eq!(seqs(&missed), vec![3, 4]);
    assert_eq!(seqs(&live), vec![5, 6]);
    expect_silence(&mut second, Duration::from_millis(300)).await
}

#[tokio::test]
async fn socket_hides_understanding() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("ws-view");
    server.say(&id, "order").await?;

    let mut socket = server.connect(&id, 0).await?;
    let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await?;
    let Some(Ok(Message::Text(text))) = frame else {
        bail!("expected a text frame, got {frame:?}");
    };
    let json: serde_json::Value = serde_json::from_str(text.as_str())?;

    assert_eq!(json["kind"]["type"], "customer");
    assert!(json["kind"].get("understanding").is_none(), "customer view leaks understanding: {json}");
    Ok(())
}

#[tokio::test]
async fn many_concurrent_sends_arrive_in_order_without_gaps() -> Result<()> {
    // More messages at once than one conversation's default rate limit lets through.
    let server = TestServer::start_without_conversation_limit().await?;
    let id = conversation("ws-many");
    let mut socket = server.connect(&id, 0).await?;

    let sends = (0..20).map(|i| {
        let text = if i % 2 == 0 { "hello" } else { "order" };
        server.say(&id, text)
    });
    for result in futures_util::future::join_all(sends).await {
        result?;
    }
    let received = next_events(&mut socket, 40).await?;

    assert_eq!(seqs(&received), (1..=40).collect::<Vec<u64>>());
    expect_silence(&mut socket, Duration::from_millis(300)).await
}

#[tokio::test]
async fn close_sockets_sends_going_away() -> Result<()> {
    let server = TestServer::start().await?;
    let mut socket = server.connect(&conversation("ws-shutdown"), 0).await?;
    // The upgrade completes before the server task subscribes; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.state.close_sockets();
    let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await?;
    let Some(Ok(Message::Close(Some(close)))) = frame else {
        bail!("expected a close frame, got {frame:?}");
    };
    assert_eq!(close.code, CloseCode::Away);
    Ok(())
}

#[tokio::test]
async fn socket_after_shutdown_returns_503() -> Result<()> {
    let server = TestServer::start().await?;
    server.state.close_sockets();

    let url = format!("ws{}/api/v1/conversations/web:late/ws", server.base.trim_start_matches("http"));
    let result = tokio_tungstenite::connect_async(url).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = result else {
        bail!("expected an HTTP error, got {result:?}");
    };
    assert_eq!(response.status().as_u16(), 503);
    Ok(())
}

#[tokio::test]
async fn socket_without_upgrade_returns_400_json() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url(&format!("/api/v1/conversations/{}/ws", conversation("ws-plain")));
    let (status, body) = crate::support::read_json(server.http.get(url).send().await?).await?;

    assert_eq!(status, 400);
    assert_eq!(crate::support::error_code(&body), "websocket_required");
    Ok(())
}

#[tokio::test]
async fn socket_from_unlisted_origin_is_rejected() -> Result<()> {
    let config = WebConfig { customer_origins: AllowedOrigins::List(vec!["https://shop.example".to_owned()]), ..WebConfig::default() };
    let server = TestServer::start_with(config).await?;
    let url = format!("ws{}/api/v1/conversations/web:o/ws", server.base.trim_start_matches("http"));

    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert("origin", "https://evil.example".parse()?);
    let result = tokio_tungstenite::connect_async(request).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = result else {
        bail!("expected an HTTP error, got {result:?}");
    };
    assert_eq!(response.status().as_u16(), 403);

    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert("origin", "https://shop.example".parse()?);
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn socket_answers_client_ping() -> Result<()> {
    let server = TestServer::start().await?;
    let mut socket = server.connect(&conversation("ws-ping"), 0).await?;
    socket.send(Message::Ping(b"are you there".to_vec().into())).await?;

    let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await?;
    let Some(Ok(Message::Pong(payload))) = frame else {
        bail!("expected a pong, got {frame:?}");
    };
    assert_eq!(payload.as_ref(), b"are you there");
    Ok(())
}

#[tokio::test]
async fn server_pings_idle_socket() -> Result<()> {
    let config = WebConfig { ping_interval: Duration::from_millis(200), ..WebConfig::default() };
    let server = TestServer::start_with(config).await?;
    let mut socket = server.connect(&conversation("ws-keepalive"), 0).await?;

    let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await?;
    assert!(matches!(frame, Some(Ok(Message::Ping(_)))), "expected a ping, got {frame:?}");
    Ok(())
}

#[tokio::test]
async fn socket_receives_event_posted_during_replay() -> Result<()> {
    // More messages at once than one conversation's default rate limit lets through.
    let server = TestServer::start_without_conversation_limit().await?;
    let id = conversation("ws-race");
    for _ in 0..5 {
        server.say(&id, "hello").await?;
    }

    let connecting = server.connect(&id, 0);
    let sending = server.say(&id, "order");
    let (socket, sent) = tokio::join!(connecting, sending);
    let mut socket = socket?;
    sent?;
    let received = next_events(&mut socket, 12).await?;

    assert_eq!(seqs(&received), (1..=12).collect::<Vec<u64>>());
    expect_silence(&mut socket, Duration::from_millis(300)).await
}
