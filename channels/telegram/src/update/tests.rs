//! Translation of recorded update shapes (JSON fixtures in `tests/fixtures/updates`).

use bot_core::{Content, ConversationId, Lang};
use teloxide::types::Update;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bot() -> BotIdentity {
    BotIdentity { id: 5000, username: "LeptonShopBot".to_owned() }
}

fn fixture(name: &str) -> Result<Update, serde_json::Error> {
    let path = format!("{}/tests/fixtures/updates/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    parse_update(text.as_bytes())
}

fn turn(name: &str) -> Result<Turn, Box<dyn std::error::Error>> {
    match translate(&fixture(name)?, &bot()) {
        Translation::Turn(turn) => Ok(*turn),
        Translation::Skip(skip) => Err(format!("{name} was skipped: {skip:?}").into()),
    }
}

fn skip(name: &str) -> Result<Skip, Box<dyn std::error::Error>> {
    match translate(&fixture(name)?, &bot()) {
        Translation::Skip(skip) => Ok(skip),
        Translation::Turn(turn) => Err(format!("{name} became a turn: {turn:?}").into()),
    }
}

fn text(turn: &Turn) -> &str {
    turn.message.text_content()
}

#[test]
fn private_text_becomes_turn() -> TestResult {
    let turn = turn("private_text")?;

    assert_eq!(turn.message.conversation_id.as_str(), "telegram:1001");
    assert_eq!(turn.message.channel.as_str(), "telegram");
    assert_eq!(turn.message.sender.as_str(), "user:1001");
    assert_eq!(text(&turn), "where is my order");
    assert_eq!(turn.message.client_message_id.as_ref().map(|id| id.as_str()), Some("tg-100"));
    assert_eq!(turn.message.locale_hint, Some(Lang::new("zh")));
    assert_eq!(turn.origin, Origin::Message);
    assert!(!turn.start);
    Ok(())
}

#[test]
fn caption_is_text() -> TestResult {
    assert_eq!(text(&turn("photo_caption")?), "my parcel arrived broken");
    Ok(())
}

#[test]
fn sticker_is_non_text() -> TestResult {
    assert_eq!(turn("sticker")?.message.content, Content::NonText { kind: "sticker".to_owned() });
    Ok(())
}

#[test]
fn edit_is_marked() -> TestResult {
    let turn = turn("edited_text")?;

    assert_eq!(turn.origin, Origin::Edit);
    assert_eq!(turn.message.client_message_id.as_ref().map(|id| id.as_str()), Some("tg-103"));
    Ok(())
}

#[test]
fn callback_sends_data() -> TestResult {
    let turn = turn("callback")?;

    assert_eq!(text(&turn), "/order_status");
    assert_eq!(turn.origin, Origin::Callback { query_id: "4382bfdwdsb323b2d9".to_owned() });
    assert_eq!(turn.message.conversation_id.as_str(), "telegram:1001");
    assert_eq!(turn.message.client_message_id.as_ref().map(|id| id.as_str()), Some("tg-cb-20-/order_status"));
    assert_eq!(turn.message.locale_hint, Some(Lang::new("en")));
    Ok(())
}

#[test]
fn inline_callback_only_answered() -> TestResult {
    assert_eq!(skip("callback_inline")?, Skip::EmptyCallback { query_id: "99".to_owned() });
    Ok(())
}

#[test]
fn group_mention_is_stripped() -> TestResult {
    let turn = turn("group_mention")?;

    assert_eq!(text(&turn), "where is my order");
    assert_eq!(turn.message.conversation_id.as_str(), "telegram:-1002000");
    assert_eq!(turn.message.sender.as_str(), "user:1001");
    Ok(())
}

#[test]
fn group_without_mention_skipped() -> TestResult {
    assert_eq!(skip("group_plain")?, Skip::NotAddressed);
    Ok(())
}

#[test]
fn command_for_other_bot_skipped() -> TestResult {
    assert_eq!(skip("group_command_other_bot")?, Skip::NotAddressed);
    Ok(())
}

#[test]
fn start_with_bot_name_is_start() -> TestResult {
    let turn = turn("group_start")?;

    assert!(turn.start);
    assert_eq!(text(&turn), "/start");
    Ok(())
}

#[test]
fn private_start_is_start() -> TestResult {
    assert!(turn("start_private")?.start);
    Ok(())
}

#[test]
fn reply_to_bot_is_addressed() -> TestResult {
    assert_eq!(text(&turn("group_reply_to_bot")?), "100001");
    Ok(())
}

#[test]
fn channel_post_keyed_by_chat() -> TestResult {
    let turn = turn("channel_post")?;

    assert_eq!(turn.message.conversation_id.as_str(), "telegram:-1003000");
    assert_eq!(turn.message.sender.as_str(), "chat:-1003000");
    assert_eq!(turn.message.locale_hint, None);
    assert_eq!(text(&turn), "opening hours?");
    Ok(())
}

#[test]
fn anonymous_admin_keyed_by_chat() -> TestResult {
    let turn = turn("anonymous_admin")?;

    assert_eq!(turn.message.sender.as_str(), "chat:-1002000");
    assert_eq!(text(&turn), "/human");
    Ok(())
}

#[test]
fn service_message_skipped() -> TestResult {
    assert_eq!(skip("new_chat_members")?, Skip::Service);
    Ok(())
}

#[test]
fn unknown_kind_named() -> TestResult {
    assert_eq!(skip("unknown_kind")?, Skip::Unsupported { kind: "future_thing".to_owned() });
    Ok(())
}

#[test]
fn inline_query_unsupported() -> TestResult {
    assert_eq!(skip("inline_query")?, Skip::Unsupported { kind: "inline_query".to_owned() });
    Ok(())
}

#[test]
fn forum_topic_in_conversation_id() -> TestResult {
    let turn = turn("forum_topic")?;

    assert_eq!(turn.message.conversation_id.as_str(), "telegram:-1004000:77");
    assert_eq!(turn.target, ChatTarget { chat_id: -1004000, thread_id: Some(77) });
    assert_eq!(text(&turn), "/order_status 100001");
    Ok(())
}

#[test]
fn bad_entity_offsets_ignored() -> TestResult {
    assert_eq!(skip("bad_entities")?, Skip::NotAddressed);
    Ok(())
}

#[test]
fn mention_alone_starts() -> TestResult {
    let turn = turn("mention_only")?;

    assert!(turn.start);
    Ok(())
}

#[test]
fn other_bot_skipped() -> TestResult {
    assert_eq!(skip("from_bot")?, Skip::FromBot);
    Ok(())
}

#[test]
fn voice_reply_in_group_is_non_text() -> TestResult {
    assert_eq!(turn("voice_group_reply")?.message.content, Content::NonText { kind: "voice".to_owned() });
    Ok(())
}

#[test]
fn chat_target_round_trips() {
    for target in [ChatTarget { chat_id: 1001, thread_id: None }, ChatTarget { chat_id: -1004000, thread_id: Some(77) }] {
        assert_eq!(ChatTarget::from_conversation_id(&target.conversation_id()), Some(target));
    }
}

#[test]
fn chat_target_rejects_other_channels() {
    for id in ["web:1001", "telegram:", "telegram:abc", "telegram:1:x"] {
        assert_eq!(ChatTarget::from_conversation_id(&ConversationId::new(id)), None, "{id} was accepted");
    }
}
