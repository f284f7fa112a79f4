//! Delivery of replies that no customer turn returned: an agent joining, the
//! agent's messages, the hand back to the bot and the close notice.

use bot_core::Event;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::update::ChatTarget;
use crate::TelegramChannel;

impl TelegramChannel {
    /// Spawns the task that sends agent-side replies (an agent joining, the
    /// agent's messages, the hand back, the close notice) of `telegram:`
    /// conversations to their chats. It subscribes to
    /// [`Engine::subscribe_proactive`](bot_core::Engine::subscribe_proactive),
    /// which carries the events no customer turn returned. The task runs until
    /// it is aborted through the returned handle.
    pub fn spawn_proactive_sender(&self) -> JoinHandle<()> {
        let mut events = self.engine().subscribe_proactive();
        let channel = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => channel.deliver_proactive(&event).await,
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "the proactive sender fell behind; those agent-side messages are not sent to Telegram");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }

    async fn deliver_proactive(&self, event: &Event) {
        let Some(target) = ChatTarget::from_conversation_id(&event.conversation_id) else {
            return;
        };
        let Some(reply) = event.reply() else {
            return;
        };
        tracing::debug!(conversation_id = %event.conversation_id, seq = event.seq, "sending an agent-side reply to Telegram");
        self.send_replies(target, std::iter::once(reply)).await;
    }
}
