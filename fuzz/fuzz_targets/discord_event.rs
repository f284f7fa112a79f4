//! Discord's inbound normalisation: a gateway event's JSON read as a new
//! message, a message update and an interaction, each translated in a direct
//! message, a guild channel and a thread, with and without the Message Content
//! intent. Seeds: `channels/discord/tests/fixtures/events`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lepton_discord::event::{translate_edit, translate_interaction, translate_message, ChannelKind, Policy, Translation};
use lepton_discord::{BotIdentity, Place};
use serenity::all::{Interaction, Message, MessageUpdateEvent};

/// The bot and support channel of the fixtures.
const BOT: u64 = 900000000000000001;
const SUPPORT: u64 = 600000000000000002;

const KINDS: [ChannelKind; 4] = [
    ChannelKind::Direct,
    ChannelKind::Guild,
    ChannelKind::Thread { parent_id: SUPPORT },
    ChannelKind::Thread { parent_id: 0 },
];

fn check(translation: Translation) {
    let Translation::Turn(turn) = translation else {
        return;
    };
    let id = &turn.message.conversation_id;
    assert!(id.as_str().starts_with("discord:"), "conversation id {id} lacks the channel prefix");
    assert_eq!(Place::from_conversation_id(id), Some(turn.place), "conversation id {id} does not parse back to its place");
}

fuzz_target!(|data: &[u8]| {
    let bot = BotIdentity { id: BOT, name: "LeptonShop".to_owned() };
    let support = [SUPPORT];
    let policies = [true, false].map(|message_content| Policy { support_channels: &support, message_content });

    if let Ok(message) = serde_json::from_slice::<Message>(data) {
        for kind in KINDS {
            for policy in &policies {
                check(translate_message(&message, kind, &bot, policy));
            }
        }
    }
    if let Ok(event) = serde_json::from_slice::<MessageUpdateEvent>(data) {
        for kind in KINDS {
            for policy in &policies {
                check(translate_edit(&event, kind, &bot, policy));
            }
        }
    }
    if let Ok(interaction) = serde_json::from_slice::<Interaction>(data) {
        for kind in KINDS {
            check(translate_interaction(&interaction, kind));
        }
    }
});
