//! What the channel and serenity log: never the bot token, at any level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use crate::harness::{button_press, dm, Harness, TestResult, DM};

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn token_never_logged() -> TestResult {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt().with_max_level(Level::TRACE).with_ansi(false).with_writer(buffer.clone()).finish();
    // The test runtime has one thread, so serenity's tasks log here too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let harness = Harness::start().await?;
    harness.send(dm(1, "where is my order"))?;
    harness.fake.wait_texts(DM, 1).await?;
    harness.fake.dispatch("INTERACTION_CREATE", button_press(51, 20, "/human"))?;
    harness.fake.wait_texts(DM, 2).await?;
    harness.stop().await?;

    let logs = buffer.text();
    assert!(logs.contains("discord_turn"), "the capture missed the channel's logs");
    assert!(logs.contains("Identifying"), "the capture missed serenity's gateway logs");
    assert!(!logs.contains("TEST.token"), "the bot token was logged");
    Ok(())
}
