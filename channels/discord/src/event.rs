//! Translation of Discord gateway events into the engine's [`InboundMessage`],
//! as plain functions of the event, the kind of channel it happened in, and
//! the channel's policy.
//!
//! | event | becomes |
//! |---|---|
//! | `MESSAGE_CREATE` with text | `Content::Text`, the bot's mentions removed |
//! | `MESSAGE_CREATE` with attachments or stickers and no text | `Content::NonText { kind }` |
//! | `MESSAGE_UPDATE` with an edit time | the same, marked [`Origin::Edit`] |
//! | `INTERACTION_CREATE` of a button | `Content::Text` of its `custom_id`, marked [`Origin::Button`] |
//! | a message from a bot or webhook, a system message | skipped |
//! | a message that only mentions the bot | marked `start` |
//!
//! Direct messages always count. In a guild a message counts when it mentions
//! the bot (`<@id>` or `<@!id>`), replies to one of its messages, or is posted
//! in a support channel or a thread of one.
//!
//! Conversation ids ([`Place::conversation_id`]):
//!
//! - `discord:dm:<channel_id>` for a direct message channel;
//! - `discord:thread:<thread_id>` for a thread: everyone in it shares the conversation;
//! - `discord:channel:<channel_id>:<user_id>` for a guild channel outside threads,
//!   one per customer, so that two customers in one support channel never fill
//!   each other's forms.

use bot_core::message::now_millis;
use bot_core::{Channel, ClientMessageId, Content, ConversationId, InboundMessage, Lang, SenderId};
use serenity::all::{
    Attachment, ChannelType, ComponentInteraction, ComponentInteractionDataKind, Interaction, Message, MessageFlags, MessageType, MessageUpdateEvent, User,
};

use crate::text;

/// The channel name of every inbound message from Discord.
pub const CHANNEL: &str = "discord";

/// The prefix of every conversation id of this channel.
pub const CONVERSATION_PREFIX: &str = "discord:";

/// The bot's own account, as `GET /users/@me` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotIdentity {
    pub id: u64,
    pub name: String,
}

/// The kind of channel an event happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// A direct message channel with one customer.
    Direct,
    /// A guild text, announcement or forum channel.
    Guild,
    /// A thread, with the channel it belongs to.
    Thread { parent_id: u64 },
}

impl ChannelKind {
    /// Reads a channel's type from Discord; a thread without a parent counts as parented by nothing (0).
    pub fn from_type(kind: ChannelType, parent_id: Option<u64>) -> Self {
        match kind {
            ChannelType::Private => Self::Direct,
            ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread => Self::Thread { parent_id: parent_id.unwrap_or(0) },
            _ => Self::Guild,
        }
    }
}

/// A conversation's place on Discord: where its replies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    Direct { channel_id: u64 },
    Thread { thread_id: u64 },
    /// One customer's conversation in a guild channel shared with others.
    Channel { channel_id: u64, user_id: u64 },
}

impl Place {
    fn new(kind: ChannelKind, channel_id: u64, user_id: u64) -> Self {
        match kind {
            ChannelKind::Direct => Self::Direct { channel_id },
            ChannelKind::Thread { .. } => Self::Thread { thread_id: channel_id },
            ChannelKind::Guild => Self::Channel { channel_id, user_id },
        }
    }

    /// The channel (or thread) that messages of this conversation are posted in.
    pub fn channel_id(&self) -> u64 {
        match *self {
            Self::Direct { channel_id } | Self::Channel { channel_id, .. } => channel_id,
            Self::Thread { thread_id } => thread_id,
        }
    }

    pub fn conversation_id(&self) -> ConversationId {
        let id = match self {
            Self::Direct { channel_id } => format!("{CONVERSATION_PREFIX}dm:{channel_id}"),
            Self::Thread { thread_id } => format!("{CONVERSATION_PREFIX}thread:{thread_id}"),
            Self::Channel { channel_id, user_id } => format!("{CONVERSATION_PREFIX}channel:{channel_id}:{user_id}"),
        };
        ConversationId::new(id)
    }

    /// Parses a conversation id of this channel; `None` for other channels' ids.
    pub fn from_conversation_id(id: &ConversationId) -> Option<Self> {
        let rest = id.as_str().strip_prefix(CONVERSATION_PREFIX)?;
        let (kind, ids) = rest.split_once(':')?;
        let number = |text: &str| text.parse::<u64>().ok().filter(|&n| n > 0);
        match kind {
            "dm" => Some(Self::Direct { channel_id: number(ids)? }),
            "thread" => Some(Self::Thread { thread_id: number(ids)? }),
            "channel" => {
                let (channel, user) = ids.split_once(':')?;
                Some(Self::Channel { channel_id: number(channel)?, user_id: number(user)? })
            }
            _ => None,
        }
    }
}

/// What decides whether a guild message is for the bot.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'a> {
    pub support_channels: &'a [u64],
    /// Whether the gateway sends message content: the privileged Message Content intent.
    pub message_content: bool,
}

impl Policy<'_> {
    fn is_support(&self, kind: ChannelKind, channel_id: u64) -> bool {
        match kind {
            ChannelKind::Direct => false,
            ChannelKind::Guild => self.support_channels.contains(&channel_id),
            ChannelKind::Thread { parent_id } => self.support_channels.contains(&parent_id),
        }
    }
}

/// The source of a turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Message,
    /// The customer edited an earlier message.
    Edit,
    /// The customer pressed a button under one of the bot's messages.
    Button,
}

/// A customer message ready for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub message: InboundMessage,
    pub place: Place,
    pub origin: Origin,
    /// The customer's message that replies answer, in a channel shared with others.
    pub reply_to: Option<u64>,
    /// True when the message only mentions the bot: the channel sends the start intent.
    pub start: bool,
    /// True for a message posted directly in a support channel, where the
    /// channel may open a thread for the customer.
    pub thread_candidate: bool,
    /// The customer's display name, for naming a thread.
    pub author_name: String,
}

impl Turn {
    /// Moves the turn into a thread: its conversation and replies go there.
    pub fn move_to_thread(&mut self, thread_id: u64) {
        self.place = Place::Thread { thread_id };
        self.message.conversation_id = self.place.conversation_id();
        self.reply_to = None;
        self.thread_candidate = false;
    }
}

/// The reason an event produces no turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A guild message that neither mentions nor answers the bot, outside support channels.
    NotAddressed,
    /// Sent by a bot (this one included) or a webhook.
    FromBot,
    /// A member joined, a message was pinned, a thread was created, ...
    Service,
    /// A guild message with no content because the Message Content intent is off.
    ContentWithheld,
    /// A message update without an edit by its author, such as a link preview being added.
    NotEdited,
    /// A button with an empty `custom_id`.
    EmptyButton,
    /// A slash command, select menu, modal or other interaction the channel does not handle.
    Unsupported { kind: &'static str },
}

/// The channel's reading of one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Translation {
    Turn(Box<Turn>),
    Skip(Skip),
}

/// The parts of a created or edited message that translation reads.
struct Posted<'a> {
    id: u64,
    channel_id: u64,
    author: &'a User,
    content: &'a str,
    mentions: &'a [User],
    attachments: &'a [Attachment],
    has_stickers: bool,
    has_embeds: bool,
    kind: MessageType,
    from_webhook: bool,
    replied_author: Option<u64>,
    flags: Option<MessageFlags>,
}

/// Translates a new message.
pub fn translate_message(message: &Message, kind: ChannelKind, bot: &BotIdentity, policy: &Policy<'_>) -> Translation {
    let posted = Posted {
        id: message.id.get(),
        channel_id: message.channel_id.get(),
        author: &message.author,
        content: &message.content,
        mentions: &message.mentions,
        attachments: &message.attachments,
        has_stickers: !message.sticker_items.is_empty(),
        has_embeds: !message.embeds.is_empty(),
        kind: message.kind,
        from_webhook: message.webhook_id.is_some(),
        replied_author: message.referenced_message.as_ref().map(|replied| replied.author.id.get()),
        flags: message.flags,
    };
    from_posted(&posted, kind, bot, policy, Origin::Message, format!("dc-{}", posted.id))
}

/// Translates a message update. Only an update with an edit time and the new
/// text is an edit: Discord also sends updates when it adds link previews.
pub fn translate_edit(event: &MessageUpdateEvent, kind: ChannelKind, bot: &BotIdentity, policy: &Policy<'_>) -> Translation {
    let (Some(edited), Some(author), Some(content)) = (event.edited_timestamp, event.author.as_ref(), event.content.as_deref()) else {
        return Translation::Skip(Skip::NotEdited);
    };
    let replied = event.referenced_message.as_ref().and_then(|replied| replied.as_ref()).map(|replied| replied.author.id.get());
    let posted = Posted {
        id: event.id.get(),
        channel_id: event.channel_id.get(),
        author,
        content,
        mentions: event.mentions.as_deref().unwrap_or_default(),
        attachments: event.attachments.as_deref().unwrap_or_default(),
        has_stickers: event.sticker_items.as_ref().is_some_and(|items| !items.is_empty()),
        has_embeds: event.embeds.as_ref().is_some_and(|embeds| !embeds.is_empty()),
        kind: event.kind.unwrap_or(MessageType::Regular),
        from_webhook: event.webhook_id.flatten().is_some(),
        replied_author: replied,
        flags: event.flags.flatten(),
    };
    // Each edit gets its own id, so the engine drops only a repeat of the same edit.
    let edited_ms = edited.unix_timestamp_nanos() / 1_000_000;
    from_posted(&posted, kind, bot, policy, Origin::Edit, format!("dc-{}-edit-{edited_ms}", posted.id))
}

fn from_posted(posted: &Posted<'_>, kind: ChannelKind, bot: &BotIdentity, policy: &Policy<'_>, origin: Origin, client_id: String) -> Translation {
    if posted.author.bot || posted.from_webhook || posted.author.id.get() == bot.id {
        return Translation::Skip(Skip::FromBot);
    }
    if !matches!(posted.kind, MessageType::Regular | MessageType::InlineReply) {
        return Translation::Skip(Skip::Service);
    }

    let mentioned = posted.mentions.iter().any(|user| user.id.get() == bot.id) || mentions_bot(posted.content, bot.id);
    let support = policy.is_support(kind, posted.channel_id);
    let addressed = kind == ChannelKind::Direct || mentioned || support || posted.replied_author == Some(bot.id);
    if !addressed {
        return Translation::Skip(Skip::NotAddressed);
    }
    // Without the intent, Discord blanks guild messages that do not mention the bot.
    if !policy.message_content && kind != ChannelKind::Direct && !mentioned && looks_blank(posted) {
        return Translation::Skip(Skip::ContentWithheld);
    }

    let stripped = strip_bot_mentions(posted.content, bot.id);
    let (content, start) = match text::clean(&stripped) {
        Some(text) => (Content::Text(text), false),
        None => (Content::NonText { kind: non_text_kind(posted).to_owned() }, mentioned && posted.attachments.is_empty() && !posted.has_stickers),
    };

    let place = Place::new(kind, posted.channel_id, posted.author.id.get());
    let in_channel = matches!(place, Place::Channel { .. });
    let message = InboundMessage {
        conversation_id: place.conversation_id(),
        channel: Channel::new(CHANNEL),
        sender: sender_id(posted.author),
        content,
        client_message_id: Some(ClientMessageId::new(client_id)),
        locale_hint: None,
        received_at: now_millis(),
    };
    let turn = Turn {
        message,
        place,
        origin,
        reply_to: in_channel.then_some(posted.id),
        start,
        thread_candidate: in_channel && support,
        author_name: display_name(posted.author),
    };
    Translation::Turn(Box::new(turn))
}

/// Translates an interaction. Only button presses become turns.
pub fn translate_interaction(interaction: &Interaction, kind: ChannelKind) -> Translation {
    let component = match interaction {
        Interaction::Component(component) => component,
        Interaction::Command(_) => return Translation::Skip(Skip::Unsupported { kind: "application_command" }),
        Interaction::Autocomplete(_) => return Translation::Skip(Skip::Unsupported { kind: "autocomplete" }),
        Interaction::Modal(_) => return Translation::Skip(Skip::Unsupported { kind: "modal_submit" }),
        Interaction::Ping(_) => return Translation::Skip(Skip::Unsupported { kind: "ping" }),
        _ => return Translation::Skip(Skip::Unsupported { kind: "unknown" }),
    };
    if !matches!(component.data.kind, ComponentInteractionDataKind::Button) {
        return Translation::Skip(Skip::Unsupported { kind: "select_menu" });
    }
    from_button(component, kind)
}

fn from_button(component: &ComponentInteraction, kind: ChannelKind) -> Translation {
    let custom_id = &component.data.custom_id;
    let Some(text) = text::clean(custom_id) else {
        return Translation::Skip(Skip::EmptyButton);
    };

    let place = Place::new(kind, component.channel_id.get(), component.user.id.get());
    // One id per button of one message: a second press of the same button is a
    // retry the engine drops, while another button of that message still works.
    let client_id = format!("dc-int-{}-{custom_id}", component.message.id.get());
    let message = InboundMessage {
        conversation_id: place.conversation_id(),
        channel: Channel::new(CHANNEL),
        sender: sender_id(&component.user),
        content: Content::Text(text),
        client_message_id: Some(ClientMessageId::new(client_id)),
        locale_hint: Lang::from_tag(&component.locale),
        received_at: now_millis(),
    };
    let turn = Turn {
        message,
        place,
        origin: Origin::Button,
        reply_to: None,
        start: false,
        thread_candidate: false,
        author_name: display_name(&component.user),
    };
    Translation::Turn(Box::new(turn))
}

/// True when `content` holds `<@id>` or the older nickname form `<@!id>` of the bot.
pub fn mentions_bot(content: &str, bot_id: u64) -> bool {
    content.contains(&format!("<@{bot_id}>")) || content.contains(&format!("<@!{bot_id}>"))
}

/// Removes `<@id>` and `<@!id>` mentions of the bot.
pub fn strip_bot_mentions(content: &str, bot_id: u64) -> String {
    content.replace(&format!("<@{bot_id}>"), "").replace(&format!("<@!{bot_id}>"), "")
}

fn looks_blank(posted: &Posted<'_>) -> bool {
    posted.content.trim().is_empty() && posted.attachments.is_empty() && !posted.has_stickers && !posted.has_embeds
}

fn non_text_kind(posted: &Posted<'_>) -> &'static str {
    if posted.flags.is_some_and(|flags| flags.contains(MessageFlags::IS_VOICE_MESSAGE)) {
        return "voice";
    }
    if let Some(attachment) = posted.attachments.first() {
        let media = attachment.content_type.as_deref().unwrap_or_default();
        return match media.split('/').next().unwrap_or_default() {
            "image" => "image",
            "video" => "video",
            "audio" => "audio",
            _ => "file",
        };
    }
    if posted.has_stickers {
        return "sticker";
    }
    if posted.has_embeds {
        return "embed";
    }
    "blank"
}

fn sender_id(user: &User) -> SenderId {
    SenderId::new(format!("user:{}", user.id.get()))
}

fn display_name(user: &User) -> String {
    user.global_name.clone().unwrap_or_else(|| user.name.clone())
}

#[cfg(test)]
mod tests;
