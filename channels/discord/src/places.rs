//! The places events happen in: the kind of each guild channel (a thread, and of
//! which channel, or not), looked up once with `GET /channels/{id}` and kept,
//! and the thread each customer talks in when the bot opens threads.

use std::collections::HashMap;
use std::sync::Mutex;

use serenity::all::{Interaction, Message};

use crate::event::{mentions_bot, ChannelKind, Turn};
use crate::DiscordChannel;

/// How many channel kinds and customer threads are kept; the map starts over when full.
const REMEMBERED_CHANNELS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Places {
    kinds: Mutex<HashMap<u64, ChannelKind>>,
    /// The thread of each (support channel, customer).
    // NOTE: kept in memory only, so after a restart a customer who writes in
    // the support channel again gets a new thread. Storing it in the session
    // store would keep it.
    threads: Mutex<HashMap<(u64, u64), u64>>,
}

impl Places {
    fn remember_kind(&self, channel_id: u64, kind: ChannelKind) {
        let mut kinds = self.kinds.lock().expect("channel kinds poisoned");
        if kinds.len() >= REMEMBERED_CHANNELS {
            kinds.clear();
        }
        kinds.insert(channel_id, kind);
    }

    fn known_kind(&self, channel_id: u64) -> Option<ChannelKind> {
        self.kinds.lock().expect("channel kinds poisoned").get(&channel_id).copied()
    }
}

impl DiscordChannel {
    /// The kind of a message's channel; `None` when it cannot be read, which is logged.
    pub(crate) async fn message_channel_kind(&self, message: &Message) -> Option<ChannelKind> {
        let channel_id = message.channel_id.get();
        if message.guild_id.is_none() {
            return Some(ChannelKind::Direct);
        }
        let support = &self.config().support_channels;
        if support.contains(&channel_id) {
            return Some(ChannelKind::Guild);
        }
        // Outside support channels only a mention or a reply counts, and then
        // only the conversation id depends on the kind.
        let replied_to_bot = message.referenced_message.as_ref().is_some_and(|replied| replied.author.id.get() == self.identity().id);
        let mentioned = message.mentions.iter().any(|user| user.id.get() == self.identity().id) || mentions_bot(&message.content, self.identity().id);
        if support.is_empty() && !mentioned && !replied_to_bot {
            return Some(ChannelKind::Guild);
        }
        self.channel_kind(channel_id).await
    }

    /// The kind of the channel a button was pressed in, from the interaction when Discord includes it.
    pub(crate) async fn interaction_channel_kind(&self, interaction: &Interaction) -> Option<ChannelKind> {
        let Interaction::Component(component) = interaction else {
            return Some(ChannelKind::Guild);
        };
        if let Some(channel) = &component.channel {
            let kind = ChannelKind::from_type(channel.kind, channel.parent_id.map(|id| id.get()));
            self.places().remember_kind(channel.id.get(), kind);
            return Some(kind);
        }
        if component.guild_id.is_none() {
            return Some(ChannelKind::Direct);
        }
        self.channel_kind(component.channel_id.get()).await
    }

    pub(crate) async fn channel_kind(&self, channel_id: u64) -> Option<ChannelKind> {
        if let Some(kind) = self.places().known_kind(channel_id) {
            return Some(kind);
        }
        match self.outbox().channel_kind(channel_id).await {
            Ok(kind) => {
                self.places().remember_kind(channel_id, kind);
                Some(kind)
            }
            Err(error) => {
                tracing::warn!(channel_id, %error, "cannot read the kind of a Discord channel; skipping its message");
                None
            }
        }
    }

    /// Moves a turn from a support channel into the customer's thread, opening
    /// one on their message the first time. When the thread cannot be opened
    /// (no permission), the conversation stays in the channel.
    pub(crate) async fn move_to_customer_thread(&self, turn: &mut Turn) {
        let crate::event::Place::Channel { channel_id, user_id } = turn.place else {
            return;
        };
        let existing = self.places().threads.lock().expect("customer threads poisoned").get(&(channel_id, user_id)).copied();
        if let Some(thread_id) = existing {
            turn.move_to_thread(thread_id);
            return;
        }
        let Some(message_id) = turn.reply_to else {
            return;
        };

        match self.outbox().start_thread(channel_id, message_id, &turn.author_name).await {
            Ok(thread_id) => {
                tracing::info!(channel_id, thread_id, "opened a thread for a customer");
                self.places().remember_kind(thread_id, ChannelKind::Thread { parent_id: channel_id });
                let mut threads = self.places().threads.lock().expect("customer threads poisoned");
                if threads.len() >= REMEMBERED_CHANNELS {
                    threads.clear();
                }
                threads.insert((channel_id, user_id), thread_id);
                drop(threads);
                turn.move_to_thread(thread_id);
            }
            Err(error) => {
                tracing::warn!(channel_id, %error, "cannot open a thread for a customer; answering in the channel. Give the bot Create Public Threads and Send Messages in Threads");
            }
        }
    }
}
