//! The customer message endpoint and its responses to bad input.

use anyhow::Result;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{conversation, error_code, error_message, events_of, read_json, seqs, text_of, TestServer};

#[tokio::test]
async fn post_returns_customer_event_and_reply() -> Result<()> {
    let server = TestServer::start().await?;
    let events = server.say(&conversation("post-reply"), "hello").await?;

    assert_eq!(seqs(&events), vec![1, 2]);
    assert_eq!(text_of(&events[0]), Some("hello"));
    assert_eq!(text_of(&events[1]), Some("Hello! How can I help?"));
    let quick_replies = events[1].reply().map(|reply| reply.quick_replies.len());
    assert_eq!(quick_replies, Some(2));
    Ok(())
}

#[tokio::test]
async fn post_body_has_conversation_id_and_duplicate_flag() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("post-shape");
    let (status, body) = server.send(&id, json!({ "text": "hello" })).await?;

    assert_eq!(status, 200);
    assert_eq!(body["conversation_id"], json!(id));
    assert_eq!(body["duplicate"], json!(false));
    Ok(())
}

#[tokio::test]
async fn post_hides_understanding_from_customer() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("post-understanding");
    let (_, body) = server.send(&id, json!({ "text": "where is my order" })).await?;
    assert!(body["events"][0].get("kind").is_some());
    assert!(body["events"][0]["kind"].get("understanding").is_none(), "customer view leaks understanding: {body}");

    let (_, agent_view) = server.agent_get(&format!("/{id}/events?after=0")).await?;
    let understanding = &agent_view["events"][0]["kind"]["understanding"];
    assert_eq!(understanding["intent"], json!("order"));
    Ok(())
}

#[tokio::test]
async fn duplicate_client_message_id_returns_original_events() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("duplicate");
    let body = json!({ "text": "hello", "client_message_id": "m-1" });

    let (first_status, first) = server.send(&id, body.clone()).await?;
    let (second_status, second) = server.send(&id, body).await?;

    assert_eq!(first_status, 200);
    assert_eq!(second_status, 200);
    assert_eq!(second["duplicate"], json!(true));
    assert_eq!(events_of(&second)?, events_of(&first)?);
    let transcript = server.engine.events(&id.as_str().into(), 0, 100).await?;
    assert_eq!(transcript.len(), 2, "the retry added events");
    Ok(())
}

#[tokio::test]
async fn locale_selects_reply_language() -> Result<()> {
    let server = TestServer::start().await?;
    // "ok" has too few letters for the engine to guess its language, so the locale decides.
    let (status, body) = server.send(&conversation("locale"), json!({ "text": "ok", "locale": "zh-CN" })).await?;

    assert_eq!(status, 200);
    assert_eq!(text_of(&events_of(&body)?[1]), Some("抱歉，我没有理解您的意思。可以换个说法吗？"));
    Ok(())
}

#[tokio::test]
async fn oversized_body_returns_413_json() -> Result<()> {
    let server = TestServer::start().await?;
    let text = "a".repeat(100 * 1024);
    let (status, body) = server.send(&conversation("huge"), json!({ "text": text })).await?;

    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "message_too_large");
    assert!(error_message(&body).contains("limit"));
    Ok(())
}

#[tokio::test]
async fn text_over_message_limit_returns_413() -> Result<()> {
    let server = TestServer::start().await?;
    let text = "退".repeat(6000); // 18,000 bytes: within the body limit, over the 16 KiB text limit
    let (status, body) = server.send(&conversation("long-text"), json!({ "text": text })).await?;

    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "message_too_large");
    Ok(())
}

#[tokio::test]
async fn invalid_json_returns_400_json() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url(&format!("/api/v1/conversations/{}/messages", conversation("bad-json")));
    let response = server.http.post(url).header("content-type", "application/json").body("{\"text\": ").send().await?;
    let (status, body) = read_json(response).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_json");
    Ok(())
}

#[tokio::test]
async fn missing_text_field_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, body) = server.send(&conversation("no-text"), json!({ "message": "hi" })).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_json");
    assert!(error_message(&body).contains("text"), "message does not name the field: {body}");
    Ok(())
}

#[tokio::test]
async fn wrong_content_type_returns_415_json() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url(&format!("/api/v1/conversations/{}/messages", conversation("form")));
    let response = server.http.post(url).header("content-type", "text/plain").body("hello").send().await?;
    let (status, body) = read_json(response).await?;

    assert_eq!(status, 415);
    assert_eq!(error_code(&body), "unsupported_media_type");
    Ok(())
}

#[tokio::test]
async fn empty_text_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    for text in ["", "   ", "\n\t ", "\u{0}\u{7}"] {
        let (status, body) = server.send(&conversation("empty"), json!({ "text": text })).await?;
        assert_eq!(status, 400, "text {text:?}");
        assert_eq!(error_code(&body), "empty_text", "text {text:?}");
    }
    Ok(())
}

#[tokio::test]
async fn bad_conversation_id_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let too_long = "a".repeat(129);
    for id in ["bad%20id", "a%2Fb", "%E6%BC%A2", too_long.as_str()] {
        let (status, body) = server.send(id, json!({ "text": "hello" })).await?;
        assert_eq!(status, 400, "id {id:?}");
        assert_eq!(error_code(&body), "invalid_conversation_id", "id {id:?}");
    }
    Ok(())
}

#[tokio::test]
async fn long_conversation_id_returns_400_json() -> Result<()> {
    let server = TestServer::start().await?;
    let too_long = "a".repeat(60_000);
    let (status, body) = server.send(&too_long, json!({ "text": "hello" })).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_conversation_id");
    Ok(())
}

/// Hyper rejects a URI longer than 65,534 bytes itself, with a 414 and no body,
/// before the router sees it. This test pins that behaviour, so that a hyper
/// version that lets such requests through (and so needs the JSON error) shows up.
#[tokio::test]
async fn uri_over_hyper_limit_returns_bare_414() -> Result<()> {
    let server = TestServer::start().await?;
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let path = format!("/api/v1/conversations/{}/events", "a".repeat(100_000));
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;

    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    assert!(head.starts_with("HTTP/1.1 414 "), "{head}");
    assert_eq!(body, "");
    Ok(())
}

#[tokio::test]
async fn other_channel_prefix_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, body) = server.send("telegram:42", json!({ "text": "hello" })).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_conversation_id");
    Ok(())
}

#[tokio::test]
async fn invalid_client_message_id_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let body = json!({ "text": "hello", "client_message_id": "has space" });
    let (status, body) = server.send(&conversation("bad-cmid"), body).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_client_message_id");
    Ok(())
}

#[tokio::test]
async fn invalid_locale_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let body = json!({ "text": "hello", "locale": "not-a-locale!" });
    let (status, body) = server.send(&conversation("bad-locale"), body).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_locale");
    Ok(())
}

#[tokio::test]
async fn control_characters_are_stripped() -> Result<()> {
    let server = TestServer::start().await?;
    let events = server.say(&conversation("control"), "he\u{0}l\u{1b}lo\r\n\tthere\u{7f}").await?;

    assert_eq!(text_of(&events[0]), Some("hello\n\tthere"));
    Ok(())
}

#[tokio::test]
async fn bidi_controls_are_stripped() -> Result<()> {
    let server = TestServer::start().await?;
    let text = "order \u{202E}1000\u{202C} \u{2067}x\u{2069} \u{202A}\u{202B}\u{202D}\u{2066}\u{2068}y";
    let events = server.say(&conversation("bidi"), text).await?;

    assert_eq!(text_of(&events[0]), Some("order 1000 x y"));
    Ok(())
}

#[tokio::test]
async fn bidi_marks_are_kept() -> Result<()> {
    let server = TestServer::start().await?;
    let text = "\u{200F}שלום\u{200E} 100001 \u{61C}مرحبا";
    let events = server.say(&conversation("bidi-marks"), text).await?;

    assert_eq!(text_of(&events[0]), Some(text));
    Ok(())
}

#[tokio::test]
async fn only_bidi_controls_is_empty_text() -> Result<()> {
    let server = TestServer::start().await?;
    let (status, body) = server.send(&conversation("bidi-empty"), json!({ "text": " \u{202E}\u{2066} " })).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "empty_text");
    Ok(())
}

#[tokio::test]
async fn invisible_only_text_is_empty_text() -> Result<()> {
    let server = TestServer::start().await?;
    for text in ["\u{200B}", " \u{200B} \u{200C}\n\u{200D}\t\u{2060}\u{FEFF} ", "\u{200E}\u{200F}"] {
        let (status, body) = server.send(&conversation("invisible"), json!({ "text": text })).await?;
        assert_eq!(status, 400, "text {text:?}");
        assert_eq!(error_code(&body), "empty_text", "text {text:?}");
    }
    Ok(())
}

#[tokio::test]
async fn invisible_characters_inside_visible_text_are_kept() -> Result<()> {
    let server = TestServer::start().await?;
    // A family emoji is joined with ZWJ (U+200D); the word joiner sits between letters.
    let text = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} a\u{2060}b\u{200B}c";
    let events = server.say(&conversation("invisible-inside"), text).await?;

    assert_eq!(text_of(&events[0]), Some(text));
    Ok(())
}

#[tokio::test]
async fn emoji_and_mixed_chinese_pass_through() -> Result<()> {
    let server = TestServer::start().await?;
    for text in ["👍🎉", "我的 order 在哪里？", "📦 where is my order 订单"] {
        let events = server.say(&conversation("unicode"), text).await?;
        assert_eq!(text_of(&events[0]), Some(text));
    }
    Ok(())
}

#[tokio::test]
async fn customer_events_endpoint_returns_transcript() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("transcript");
    server.say(&id, "hello").await?;
    server.say(&id, "order").await?;

    let url = server.url(&format!("/api/v1/conversations/{id}/events?after=2"));
    let (status, body) = read_json(server.http.get(url).send().await?).await?;
    assert_eq!(status, 200);
    assert_eq!(seqs(&events_of(&body)?), vec![3, 4]);
    Ok(())
}

#[tokio::test]
async fn bad_after_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url(&format!("/api/v1/conversations/{}/events?after=minus-one", conversation("bad-after")));
    let (status, body) = read_json(server.http.get(url).send().await?).await?;

    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_query");
    Ok(())
}

#[tokio::test]
async fn zero_limit_returns_400() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("zero-limit");
    server.say(&id, "hello").await?;

    let url = server.url(&format!("/api/v1/conversations/{id}/events?limit=0"));
    let (status, body) = read_json(server.http.get(url).send().await?).await?;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_query");
    assert!(error_message(&body).contains("1 to 1000"), "{body}");
    Ok(())
}

#[tokio::test]
async fn limit_bounds_the_transcript_page() -> Result<()> {
    let server = TestServer::start().await?;
    let id = conversation("limit");
    server.say(&id, "hello").await?;
    server.say(&id, "order").await?;

    for (limit, expected) in [(1, vec![1]), (3, vec![1, 2, 3]), (1_000_000, vec![1, 2, 3, 4])] {
        let url = server.url(&format!("/api/v1/conversations/{id}/events?limit={limit}"));
        let (status, body) = read_json(server.http.get(url).send().await?).await?;
        assert_eq!(status, 200, "limit {limit}");
        assert_eq!(seqs(&events_of(&body)?), expected, "limit {limit}");
    }
    Ok(())
}
