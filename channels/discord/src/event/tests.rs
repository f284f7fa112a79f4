//! Translation of recorded event shapes (JSON fixtures in `tests/fixtures/events`).

use bot_core::{Content, ConversationId, Lang};
use serde::de::DeserializeOwned;
use serenity::all::{Interaction, Message, MessageUpdateEvent};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BOT: u64 = 900000000000000001;
const DM: u64 = 400000000000000001;
const CHAN: u64 = 600000000000000001;
const SUPPORT: u64 = 600000000000000002;
const THREAD: u64 = 700000000000000001;
const CUSTOMER: u64 = 300000000000000001;

fn bot() -> BotIdentity {
    BotIdentity { id: BOT, name: "LeptonShop".to_owned() }
}

const SUPPORT_CHANNELS: [u64; 1] = [SUPPORT];

fn policy(message_content: bool) -> Policy<'static> {
    Policy { support_channels: &SUPPORT_CHANNELS, message_content }
}

fn fixture<T: DeserializeOwned>(name: &str) -> Result<T, Box<dyn std::error::Error>> {
    let path = format!("{}/tests/fixtures/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    Ok(serde_json::from_str(&text).map_err(|error| format!("cannot parse {name}: {error}"))?)
}

fn message(name: &str, kind: ChannelKind) -> Result<Translation, Box<dyn std::error::Error>> {
    Ok(translate_message(&fixture::<Message>(name)?, kind, &bot(), &policy(true)))
}

fn turn(name: &str, kind: ChannelKind) -> Result<Turn, Box<dyn std::error::Error>> {
    match message(name, kind)? {
        Translation::Turn(turn) => Ok(*turn),
        Translation::Skip(skip) => Err(format!("{name} was skipped: {skip:?}").into()),
    }
}

fn skip(translation: Translation) -> Result<Skip, Box<dyn std::error::Error>> {
    match translation {
        Translation::Skip(skip) => Ok(skip),
        Translation::Turn(turn) => Err(format!("became a turn: {turn:?}").into()),
    }
}

fn client_id(turn: &Turn) -> Option<&str> {
    turn.message.client_message_id.as_ref().map(|id| id.as_str())
}

#[test]
fn dm_becomes_turn() -> TestResult {
    let turn = turn("dm_text", ChannelKind::Direct)?;

    assert_eq!(turn.message.conversation_id.as_str(), "discord:dm:400000000000000001");
    assert_eq!(turn.message.channel.as_str(), "discord");
    assert_eq!(turn.message.sender.as_str(), "user:300000000000000001");
    assert_eq!(turn.message.text_content(), "where is my order");
    assert_eq!(client_id(&turn), Some("dc-1001"));
    assert_eq!(turn.place, Place::Direct { channel_id: DM });
    assert_eq!(turn.reply_to, None);
    assert_eq!(turn.origin, Origin::Message);
    assert!(!turn.start);
    Ok(())
}

#[test]
fn guild_mention_is_stripped() -> TestResult {
    let turn = turn("guild_mention", ChannelKind::Guild)?;

    assert_eq!(turn.message.text_content(), "Which countries do you ship to?");
    assert_eq!(turn.message.conversation_id.as_str(), "discord:channel:600000000000000001:300000000000000001");
    assert_eq!(turn.reply_to, Some(1002));
    assert!(!turn.thread_candidate, "a mention outside support channels opened a thread");
    Ok(())
}

#[test]
fn nickname_mention_is_stripped() -> TestResult {
    assert_eq!(turn("guild_mention_nick", ChannelKind::Guild)?.message.text_content(), "我想退款");
    Ok(())
}

#[test]
fn mention_alone_starts() -> TestResult {
    let turn = turn("guild_mention_only", ChannelKind::Guild)?;

    assert!(turn.start);
    assert_eq!(turn.message.content, Content::NonText { kind: "blank".to_owned() });
    Ok(())
}

#[test]
fn guild_without_mention_skipped() -> TestResult {
    assert_eq!(skip(message("guild_plain", ChannelKind::Guild)?)?, Skip::NotAddressed);
    Ok(())
}

#[test]
fn mention_text_without_mentions_array_counts() -> TestResult {
    let mut plain: Message = fixture("guild_plain")?;
    plain.content = format!("<@!{BOT}> hi");

    let translation = translate_message(&plain, ChannelKind::Guild, &bot(), &policy(true));

    assert!(matches!(translation, Translation::Turn(_)), "{translation:?}");
    Ok(())
}

#[test]
fn support_channel_needs_no_mention() -> TestResult {
    let turn = turn("support_channel", ChannelKind::Guild)?;

    assert_eq!(turn.message.text_content(), "Do you offer gift wrapping?");
    assert!(turn.thread_candidate);
    Ok(())
}

#[test]
fn withheld_content_skipped() -> TestResult {
    let withheld: Message = fixture("support_withheld")?;

    let translation = translate_message(&withheld, ChannelKind::Guild, &bot(), &policy(false));

    assert_eq!(skip(translation)?, Skip::ContentWithheld);
    Ok(())
}

#[test]
fn thread_is_own_conversation() -> TestResult {
    let turn = turn("thread_message", ChannelKind::Thread { parent_id: SUPPORT })?;

    assert_eq!(turn.message.conversation_id.as_str(), "discord:thread:700000000000000001");
    assert_eq!(turn.place, Place::Thread { thread_id: THREAD });
    assert_eq!(turn.reply_to, None);
    assert!(!turn.thread_candidate);
    Ok(())
}

#[test]
fn thread_outside_support_needs_mention() -> TestResult {
    assert_eq!(skip(message("thread_message", ChannelKind::Thread { parent_id: CHAN })?)?, Skip::NotAddressed);
    Ok(())
}

#[test]
fn reply_to_bot_is_addressed() -> TestResult {
    assert_eq!(turn("reply_to_bot", ChannelKind::Guild)?.message.text_content(), "100002");
    Ok(())
}

#[test]
fn attachment_only_is_non_text() -> TestResult {
    let turn = turn("attachment_only", ChannelKind::Direct)?;

    assert_eq!(turn.message.content, Content::NonText { kind: "image".to_owned() });
    assert!(!turn.start);
    Ok(())
}

#[test]
fn attachment_with_text_is_text() -> TestResult {
    assert_eq!(turn("attachment_caption", ChannelKind::Direct)?.message.text_content(), "my parcel arrived broken");
    Ok(())
}

#[test]
fn voice_message_named() -> TestResult {
    assert_eq!(turn("voice_message", ChannelKind::Direct)?.message.content, Content::NonText { kind: "voice".to_owned() });
    Ok(())
}

#[test]
fn other_bot_skipped() -> TestResult {
    assert_eq!(skip(message("from_bot", ChannelKind::Guild)?)?, Skip::FromBot);
    Ok(())
}

#[test]
fn own_message_skipped() -> TestResult {
    let mut own: Message = fixture("guild_mention")?;
    own.author.id = serenity::all::UserId::new(BOT);

    assert_eq!(skip(translate_message(&own, ChannelKind::Guild, &bot(), &policy(true)))?, Skip::FromBot);
    Ok(())
}

#[test]
fn member_join_skipped() -> TestResult {
    assert_eq!(skip(message("member_join", ChannelKind::Guild)?)?, Skip::Service);
    Ok(())
}

#[test]
fn edit_gets_own_id() -> TestResult {
    let event: MessageUpdateEvent = fixture("edit")?;

    let Translation::Turn(turn) = translate_edit(&event, ChannelKind::Direct, &bot(), &policy(true)) else {
        return Err("the edit was skipped".into());
    };

    assert_eq!(turn.origin, Origin::Edit);
    assert_eq!(turn.message.text_content(), "100001");
    assert_eq!(client_id(&turn), Some("dc-1001-edit-1767607260250"));
    Ok(())
}

#[test]
fn link_preview_update_skipped() -> TestResult {
    let event: MessageUpdateEvent = fixture("embed_update")?;

    assert_eq!(skip(translate_edit(&event, ChannelKind::Direct, &bot(), &policy(true)))?, Skip::NotEdited);
    Ok(())
}

#[test]
fn button_sends_custom_id() -> TestResult {
    let interaction: Interaction = fixture("button")?;

    let Translation::Turn(turn) = translate_interaction(&interaction, ChannelKind::Direct) else {
        return Err("the button press was skipped".into());
    };

    assert_eq!(turn.message.text_content(), "/order_status");
    assert_eq!(turn.origin, Origin::Button);
    assert_eq!(turn.message.conversation_id.as_str(), "discord:dm:400000000000000001");
    assert_eq!(client_id(&turn), Some("dc-int-1500-/order_status"));
    assert_eq!(turn.message.locale_hint, Some(Lang::new("zh")));
    Ok(())
}

#[test]
fn button_in_thread_keyed_by_thread() -> TestResult {
    let interaction: Interaction = fixture("button_in_thread")?;

    let Translation::Turn(turn) = translate_interaction(&interaction, ChannelKind::Thread { parent_id: SUPPORT }) else {
        return Err("the button press was skipped".into());
    };

    assert_eq!(turn.message.conversation_id.as_str(), "discord:thread:700000000000000001");
    assert_eq!(turn.message.sender.as_str(), "user:300000000000000001");
    assert_eq!(turn.message.locale_hint, Some(Lang::new("en")));
    Ok(())
}

#[test]
fn select_menu_unsupported() -> TestResult {
    let interaction: Interaction = fixture("select_menu")?;

    assert_eq!(skip(translate_interaction(&interaction, ChannelKind::Guild))?, Skip::Unsupported { kind: "select_menu" });
    Ok(())
}

#[test]
fn slash_command_unsupported() -> TestResult {
    let interaction: Interaction = fixture("slash_command")?;

    assert_eq!(skip(translate_interaction(&interaction, ChannelKind::Direct))?, Skip::Unsupported { kind: "application_command" });
    Ok(())
}

#[test]
fn move_to_thread_rekeys() -> TestResult {
    let mut turn = turn("support_channel", ChannelKind::Guild)?;

    turn.move_to_thread(THREAD);

    assert_eq!(turn.message.conversation_id.as_str(), "discord:thread:700000000000000001");
    assert_eq!(turn.reply_to, None);
    Ok(())
}

#[test]
fn place_round_trips() {
    let places = [Place::Direct { channel_id: DM }, Place::Thread { thread_id: THREAD }, Place::Channel { channel_id: CHAN, user_id: CUSTOMER }];
    for place in places {
        assert_eq!(Place::from_conversation_id(&place.conversation_id()), Some(place));
    }
}

#[test]
fn place_rejects_other_ids() {
    for id in ["web:1", "telegram:1001", "discord:", "discord:dm:x", "discord:channel:1", "discord:thread:0", "discord:guild:1"] {
        assert_eq!(Place::from_conversation_id(&ConversationId::new(id)), None, "{id} was accepted");
    }
}

#[test]
fn channel_kind_from_type() {
    assert_eq!(ChannelKind::from_type(ChannelType::Private, None), ChannelKind::Direct);
    assert_eq!(ChannelKind::from_type(ChannelType::PublicThread, Some(SUPPORT)), ChannelKind::Thread { parent_id: SUPPORT });
    assert_eq!(ChannelKind::from_type(ChannelType::Text, None), ChannelKind::Guild);
}
