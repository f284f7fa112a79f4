//! Translation of a Telegram update into the engine's [`InboundMessage`], as
//! plain functions of the update and the bot's identity.
//!
//! | update | becomes |
//! |---|---|
//! | text message | `Content::Text` |
//! | photo, video, document … with a caption | `Content::Text` of the caption |
//! | sticker, voice, location, photo without caption … | `Content::NonText { kind }` |
//! | edited message or channel post | the same, marked [`Origin::Edit`] |
//! | callback query (quick-reply tap) | `Content::Text` of its data, marked [`Origin::Callback`] |
//! | `/start`, `/start@Bot` | marked `start` |
//! | service message (member joined, pinned …), message from a bot | skipped |
//! | any other update kind | skipped, named in [`Skip::Unsupported`] |
//!
//! In groups, supergroups and channels a message counts only when it mentions
//! the bot, replies to one of its messages or starts with a command that is
//! not addressed to another bot (`/help`, `/help@ThisBot`). Private chats
//! always count.

use bot_core::message::now_millis;
use serde::Deserialize;
use bot_core::{Channel, ClientMessageId, Content, ConversationId, InboundMessage, Lang, SenderId};
use teloxide::types::{CallbackQuery, Chat, MediaKind, Message, MessageEntity, MessageEntityKind, MessageKind, Update, UpdateKind, User};

use crate::text;

/// The channel name of every inbound message from Telegram.
pub const CHANNEL: &str = "telegram";

/// The prefix of every conversation id of this channel.
pub const CONVERSATION_PREFIX: &str = "telegram:";

/// The bot's own account, as `getMe` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotIdentity {
    pub id: u64,
    /// The username without `@`.
    pub username: String,
}

/// The destination of a conversation's replies: a chat, and in forum supergroups a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChatTarget {
    pub chat_id: i64,
    pub thread_id: Option<i32>,
}

impl ChatTarget {
    /// `telegram:<chat_id>`, or `telegram:<chat_id>:<thread_id>` for a forum topic.
    pub fn conversation_id(&self) -> ConversationId {
        match self.thread_id {
            Some(thread) => ConversationId::new(format!("{CONVERSATION_PREFIX}{}:{thread}", self.chat_id)),
            None => ConversationId::new(format!("{CONVERSATION_PREFIX}{}", self.chat_id)),
        }
    }

    /// Parses a conversation id of this channel; `None` for other channels' ids.
    pub fn from_conversation_id(id: &ConversationId) -> Option<Self> {
        let rest = id.as_str().strip_prefix(CONVERSATION_PREFIX)?;
        let (chat, thread) = match rest.split_once(':') {
            Some((chat, thread)) => (chat, Some(thread.parse().ok()?)),
            None => (rest, None),
        };
        Some(Self { chat_id: chat.parse().ok()?, thread_id: thread })
    }
}

/// The source of a turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Message,
    /// The customer edited an earlier message.
    Edit,
    /// The customer tapped an inline keyboard button; the query must be answered.
    Callback { query_id: String },
}

/// A customer message ready for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub message: InboundMessage,
    pub target: ChatTarget,
    pub origin: Origin,
    /// True for `/start`: the channel replaces the text with the start intent.
    pub start: bool,
}

/// The reason an update produces no turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A group or channel message that neither mentions nor answers the bot.
    NotAddressed,
    /// Sent by a bot in its own name, this one included.
    FromBot,
    /// A member joined, a message was pinned, a topic was created, ...
    Service,
    /// A callback query with no data or from an inline message; only answered.
    EmptyCallback { query_id: String },
    /// An update kind the channel does not handle, by its Bot API field name.
    Unsupported { kind: String },
}

/// The channel's reading of one update.
#[derive(Clone, Debug, PartialEq)]
pub enum Translation {
    Turn(Box<Turn>),
    Skip(Skip),
}

/// Parses an update as the webhook receives it. An update of a kind teloxide
/// does not know keeps its JSON in `UpdateKind::Error`, as `getUpdates` does,
/// so that its kind can be named in the log.
pub fn parse_update(body: &[u8]) -> Result<Update, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    let mut update = Update::deserialize(&value)?;
    if let UpdateKind::Error(slot) = &mut update.kind {
        *slot = value;
    }
    Ok(update)
}

/// Translates one update.
pub fn translate(update: &Update, bot: &BotIdentity) -> Translation {
    let update_id = update.id.0;
    match &update.kind {
        UpdateKind::Message(message) | UpdateKind::ChannelPost(message) => from_message(update_id, message, Origin::Message, bot),
        UpdateKind::EditedMessage(message) | UpdateKind::EditedChannelPost(message) => from_message(update_id, message, Origin::Edit, bot),
        UpdateKind::CallbackQuery(query) => from_callback(query),
        UpdateKind::Error(value) => {
            let kind = value.as_object().and_then(|map| map.keys().find(|key| *key != "update_id")).cloned();
            Translation::Skip(Skip::Unsupported { kind: kind.unwrap_or_else(|| "unknown".to_owned()) })
        }
        other => Translation::Skip(Skip::Unsupported { kind: update_kind_name(other).to_owned() }),
    }
}

fn from_message(update_id: u32, message: &Message, origin: Origin, bot: &BotIdentity) -> Translation {
    // Anonymous group admins write as the group, with `from` set to a helper
    // bot and `sender_chat` set; those messages are people's and count.
    if message.sender_chat.is_none() && message.from.as_ref().is_some_and(|user| user.is_bot) {
        return Translation::Skip(Skip::FromBot);
    }
    let Some(raw) = raw_content(message) else {
        return Translation::Skip(Skip::Service);
    };

    let addressed = message.chat.is_private() || replies_to_bot(message, bot) || raw.mentions(bot) || raw.command_for(bot);
    if !addressed {
        return Translation::Skip(Skip::NotAddressed);
    }

    let content = match raw {
        RawContent::Text { text, entities } => match text::clean(&strip_bot_name(text, entities, bot)) {
            Some(cleaned) => Content::Text(cleaned),
            None if raw_mentions_only(text, entities, bot) => Content::Text("/start".to_owned()),
            None => Content::NonText { kind: "blank".to_owned() },
        },
        RawContent::Media { kind } => Content::NonText { kind: kind.to_owned() },
    };
    let start = matches!(&content, Content::Text(text) if is_start_command(text));

    let target = ChatTarget { chat_id: message.chat.id.0, thread_id: message.is_topic_message.then(|| message.thread_id.map(|t| t.0 .0)).flatten() };
    let inbound = InboundMessage {
        conversation_id: target.conversation_id(),
        channel: Channel::new(CHANNEL),
        sender: sender_id(message.from.as_ref(), message.sender_chat.as_ref(), &message.chat),
        content,
        client_message_id: Some(ClientMessageId::new(format!("tg-{update_id}"))),
        locale_hint: message.from.as_ref().and_then(language),
        received_at: now_millis(),
    };
    Translation::Turn(Box::new(Turn { message: inbound, target, origin, start }))
}

fn from_callback(query: &CallbackQuery) -> Translation {
    let query_id = query.id.0.clone();
    let (Some(data), Some(source)) = (query.data.as_deref(), query.message.as_ref()) else {
        return Translation::Skip(Skip::EmptyCallback { query_id });
    };
    let Some(text) = text::clean(data) else {
        return Translation::Skip(Skip::EmptyCallback { query_id });
    };

    let chat = source.chat();
    let thread_id = source.regular_message().filter(|m| m.is_topic_message).and_then(|m| m.thread_id).map(|t| t.0 .0);
    let target = ChatTarget { chat_id: chat.id.0, thread_id };
    // One id per button of one message: a second tap on the same button is a
    // retry the engine drops, while another button of that message still works.
    let client_message_id = format!("tg-cb-{}-{data}", source.id().0);
    let inbound = InboundMessage {
        conversation_id: target.conversation_id(),
        channel: Channel::new(CHANNEL),
        sender: sender_id(Some(&query.from), None, chat),
        content: Content::Text(text),
        client_message_id: Some(ClientMessageId::new(client_message_id)),
        locale_hint: language(&query.from),
        received_at: now_millis(),
    };
    Translation::Turn(Box::new(Turn { message: inbound, target, origin: Origin::Callback { query_id }, start: false }))
}

/// The written part of a message, or the kind of media it carries.
enum RawContent<'a> {
    Text { text: &'a str, entities: &'a [MessageEntity] },
    Media { kind: &'static str },
}

impl RawContent<'_> {
    fn mentions(&self, bot: &BotIdentity) -> bool {
        let RawContent::Text { text, entities } = self else {
            return false;
        };
        entity_texts(text, entities).any(|(kind, _, value)| is_bot_mention(kind, value, bot))
    }

    /// True when the text starts with a command that names this bot or no bot.
    fn command_for(&self, bot: &BotIdentity) -> bool {
        let RawContent::Text { text, entities } = self else {
            return false;
        };
        entity_texts(text, entities).any(|(kind, range, value)| {
            let named = value.split_once('@').map(|(_, name)| name);
            matches!(kind, MessageEntityKind::BotCommand) && range.start == 0 && named.is_none_or(|name| name.eq_ignore_ascii_case(&bot.username))
        })
    }
}

fn raw_content(message: &Message) -> Option<RawContent<'_>> {
    let common = match &message.kind {
        MessageKind::Common(common) => common,
        MessageKind::Dice(_) => return Some(RawContent::Media { kind: "dice" }),
        MessageKind::Empty {} => return Some(RawContent::Media { kind: "unsupported" }),
        _ => return None,
    };
    if let Some(text) = message.text() {
        return Some(RawContent::Text { text, entities: message.entities().unwrap_or_default() });
    }
    if let Some(caption) = message.caption().filter(|c| !c.trim().is_empty()) {
        return Some(RawContent::Text { text: caption, entities: message.caption_entities().unwrap_or_default() });
    }
    let kind = match &common.media_kind {
        MediaKind::Animation(_) => "animation",
        MediaKind::Audio(_) => "audio",
        MediaKind::Contact(_) => "contact",
        MediaKind::Document(_) => "document",
        MediaKind::PaidMedia(_) => "paid_media",
        MediaKind::Game(_) => "game",
        MediaKind::Venue(_) => "venue",
        MediaKind::Location(_) => "location",
        MediaKind::Photo(_) => "photo",
        MediaKind::Poll(_) => "poll",
        MediaKind::Checklist(_) => "checklist",
        MediaKind::Sticker(_) => "sticker",
        MediaKind::Story(_) => "story",
        MediaKind::Text(_) => "blank",
        MediaKind::Video(_) => "video",
        MediaKind::VideoNote(_) => "video_note",
        MediaKind::Voice(_) => "voice",
        MediaKind::Migration(_) => return None,
    };
    Some(RawContent::Media { kind })
}

fn replies_to_bot(message: &Message, bot: &BotIdentity) -> bool {
    let replied = message.reply_to_message().and_then(|reply| reply.from.as_ref());
    replied.is_some_and(|user| user.id.0 == bot.id)
}

fn is_bot_mention(kind: &MessageEntityKind, value: &str, bot: &BotIdentity) -> bool {
    match kind {
        MessageEntityKind::Mention => value.strip_prefix('@').is_some_and(|name| name.eq_ignore_ascii_case(&bot.username)),
        MessageEntityKind::TextMention { user } => user.id.0 == bot.id,
        _ => false,
    }
}

/// Removes mentions of the bot and turns `/command@Bot` into `/command`.
fn strip_bot_name(text: &str, entities: &[MessageEntity], bot: &BotIdentity) -> String {
    let mut cuts: Vec<std::ops::Range<usize>> = Vec::new();
    for (kind, range, value) in entity_texts(text, entities) {
        if is_bot_mention(kind, value, bot) {
            cuts.push(range);
        } else if matches!(kind, MessageEntityKind::BotCommand) {
            if let Some(at) = value.find('@').filter(|&at| value[at + 1..].eq_ignore_ascii_case(&bot.username)) {
                cuts.push(range.start + at..range.end);
            }
        }
    }
    cuts.sort_by_key(|range| range.start);

    let mut kept = String::with_capacity(text.len());
    let mut position = 0;
    for cut in cuts {
        if cut.start < position {
            continue;
        }
        kept.push_str(&text[position..cut.start]);
        position = cut.end;
    }
    kept.push_str(&text[position..]);
    kept
}

/// True when the text contains nothing but mentions of the bot ("@ShopBot").
fn raw_mentions_only(text: &str, entities: &[MessageEntity], bot: &BotIdentity) -> bool {
    let mentioned = entity_texts(text, entities).any(|(kind, _, value)| is_bot_mention(kind, value, bot));
    mentioned && strip_bot_name(text, entities, bot).trim().is_empty()
}

fn is_start_command(text: &str) -> bool {
    text.split_whitespace().next() == Some("/start")
}

/// Yields each entity with its byte range and text, skipping entities whose
/// offsets do not fall on character boundaries of `text`.
fn entity_texts<'a>(text: &'a str, entities: &'a [MessageEntity]) -> impl Iterator<Item = (&'a MessageEntityKind, std::ops::Range<usize>, &'a str)> {
    entities.iter().filter_map(move |entity| {
        let start = text::utf16_to_byte(text, entity.offset)?;
        let end = text::utf16_to_byte(text, entity.offset.checked_add(entity.length)?)?;
        let value = text.get(start..end)?;
        Some((&entity.kind, start..end, value))
    })
}

fn sender_id(from: Option<&User>, sender_chat: Option<&Chat>, chat: &Chat) -> SenderId {
    match (from, sender_chat) {
        (_, Some(sender_chat)) => SenderId::new(format!("chat:{}", sender_chat.id.0)),
        (Some(user), None) => SenderId::new(format!("user:{}", user.id.0)),
        (None, None) => SenderId::new(format!("chat:{}", chat.id.0)),
    }
}

fn language(user: &User) -> Option<Lang> {
    user.language_code.as_deref().and_then(Lang::from_tag)
}

fn update_kind_name(kind: &UpdateKind) -> &'static str {
    match kind {
        UpdateKind::Message(_) => "message",
        UpdateKind::EditedMessage(_) => "edited_message",
        UpdateKind::ChannelPost(_) => "channel_post",
        UpdateKind::EditedChannelPost(_) => "edited_channel_post",
        UpdateKind::BusinessConnection(_) => "business_connection",
        UpdateKind::BusinessMessage(_) => "business_message",
        UpdateKind::EditedBusinessMessage(_) => "edited_business_message",
        UpdateKind::DeletedBusinessMessages(_) => "deleted_business_messages",
        UpdateKind::MessageReaction(_) => "message_reaction",
        UpdateKind::MessageReactionCount(_) => "message_reaction_count",
        UpdateKind::InlineQuery(_) => "inline_query",
        UpdateKind::ChosenInlineResult(_) => "chosen_inline_result",
        UpdateKind::CallbackQuery(_) => "callback_query",
        UpdateKind::ShippingQuery(_) => "shipping_query",
        UpdateKind::PreCheckoutQuery(_) => "pre_checkout_query",
        UpdateKind::PurchasedPaidMedia(_) => "purchased_paid_media",
        UpdateKind::Poll(_) => "poll",
        UpdateKind::PollAnswer(_) => "poll_answer",
        UpdateKind::MyChatMember(_) => "my_chat_member",
        UpdateKind::ChatMember(_) => "chat_member",
        UpdateKind::ChatJoinRequest(_) => "chat_join_request",
        UpdateKind::ChatBoost(_) => "chat_boost",
        UpdateKind::RemovedChatBoost(_) => "removed_chat_boost",
        UpdateKind::Error(_) => "unknown",
    }
}

#[cfg(test)]
mod tests;
