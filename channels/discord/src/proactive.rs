//! Delivery of replies that no customer turn returned: an agent joining, the
//! agent's messages, the hand back to the bot and the close notice.

use bot_core::Event;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::event::Place;
use crate::send::Delivery;
use crate::DiscordChannel;

impl DiscordChannel {
    /// Spawns the task that sends agent-side replies of `discord:`
    /// conversations to their channels. It subscribes to
    /// [`Engine::subscribe_proactive`](bot_core::Engine::subscribe_proactive),
    /// which carries the events no customer turn returned, and runs until it is
    /// aborted through the returned handle or the engine is dropped.
    ///
    /// In a guild channel shared by several customers, each message starts
    /// with a mention of the customer it is meant for, which notifies that
    /// customer only.
    pub fn spawn_proactive_sender(&self) -> JoinHandle<()> {
        let mut events = self.engine().subscribe_proactive();
        let channel = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => channel.deliver_proactive(&event).await,
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "the proactive sender fell behind; those agent-side messages are not sent to Discord");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    async fn deliver_proactive(&self, event: &Event) {
        let Some(place) = Place::from_conversation_id(&event.conversation_id) else {
            return;
        };
        let Some(reply) = event.reply() else {
            return;
        };
        let notify = match place {
            Place::Channel { user_id, .. } => Some(user_id),
            Place::Direct { .. } | Place::Thread { .. } => None,
        };
        tracing::debug!(conversation_id = %event.conversation_id, seq = event.seq, "sending an agent-side reply to Discord");
        self.send_replies(place, Delivery { reply_to: None, notify }, std::iter::once(reply)).await;
    }
}
