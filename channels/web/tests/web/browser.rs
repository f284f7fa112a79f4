//! The chat widget in a real browser: headless Chromium driven by
//! `tests/browser/widget.mjs` against a test server.

use anyhow::{bail, Result};
use lepton_web::WebConfig;

use crate::support::{TestServer, AGENT_TOKEN};

/// The server's text limit in the browser test: below the widget's own limit
/// of 16 KiB, so that the script can also check a rejection by the server.
const SERVER_MAX_MESSAGE_BYTES: usize = 4096;

#[tokio::test]
#[ignore = "needs node 18+ and chromium on PATH (or CHROMIUM=path); run with --ignored"]
async fn widget_chats_in_headless_chromium() -> Result<()> {
    let config = WebConfig {
        agent_token: Some(AGENT_TOKEN.to_owned()),
        max_message_bytes: SERVER_MAX_MESSAGE_BYTES,
        ..WebConfig::default()
    };
    let server = TestServer::start_with(config).await?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/widget.mjs");
    let mut command = std::process::Command::new("node");
    command.arg(script).arg(&server.base).arg(AGENT_TOKEN);
    if let Ok(path) = std::env::var("LEPTON_WIDGET_SCREENSHOT") {
        command.arg(path);
    }

    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("widget checks failed with {}", output.status);
    }
    Ok(())
}
