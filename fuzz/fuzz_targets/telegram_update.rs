//! Telegram's inbound normalisation: an update's JSON as the webhook receives
//! it, parsed with `parse_update` and translated into an engine message.
//! Seeds: `channels/telegram/tests/fixtures/updates`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lepton_telegram::update::{parse_update, translate, Translation};
use lepton_telegram::{BotIdentity, ChatTarget};

fuzz_target!(|data: &[u8]| {
    let Ok(update) = parse_update(data) else {
        return;
    };
    // The identity the fixtures use, so that their mentions and replies count.
    let bot = BotIdentity { id: 5000, username: "LeptonShopBot".to_owned() };

    let Translation::Turn(turn) = translate(&update, &bot) else {
        return;
    };
    let id = &turn.message.conversation_id;
    assert!(id.as_str().starts_with("telegram:"), "conversation id {id} lacks the channel prefix");
    assert_eq!(ChatTarget::from_conversation_id(id), Some(turn.target), "conversation id {id} does not parse back to its chat");
});
