//! The HTTP client that flows' `http` steps use, on reqwest.

use std::time::Duration;

use async_trait::async_trait;
use bot_core::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// Timeouts and size limits of HTTP actions, from `lepton serve`'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// The timeout of a request whose step sets no `timeout_ms`: connecting,
    /// sending and reading the whole response.
    pub default_timeout: Duration,
    /// The time allowed to open the TCP (and TLS) connection, within the
    /// request's timeout.
    pub connect_timeout: Duration,
    /// The largest response body read; a larger one fails the step.
    pub max_response_bytes: usize,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self { default_timeout: Duration::from_secs(5), connect_timeout: Duration::from_secs(3), max_response_bytes: 1024 * 1024 }
    }
}

/// Sends HTTP actions with one shared connection pool.
pub struct ReqwestClient {
    client: reqwest::Client,
    config: HttpClientConfig,
}

impl ReqwestClient {
    pub fn new(config: HttpClientConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("lepton/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(Self { client, config })
    }
}

#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpError::Invalid { reason: format!("unknown HTTP method {:?}", request.method) })?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| HttpError::Invalid { reason: format!("invalid URL {:?}: {e}", request.url) })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Invalid { reason: format!("URL {:?} is not http or https", request.url) });
        }

        let timeout = request.timeout.unwrap_or(self.config.default_timeout);
        let mut builder = self.client.request(method, url).timeout(timeout);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let mut response = builder.send().await.map_err(|e| classify(&request.url, timeout, e))?;
        let status = response.status().as_u16();

        let too_large = || HttpError::ResponseTooLarge { url: request.url.clone(), max_bytes: self.config.max_response_bytes };
        if response.content_length().is_some_and(|length| length > self.config.max_response_bytes as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&request.url, timeout, e))? {
            if bytes.len() + chunk.len() > self.config.max_response_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(HttpResponse { status, body })
    }
}

fn classify(url: &str, timeout: Duration, error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        return HttpError::Timeout { url: url.to_owned(), timeout };
    }
    HttpError::Failed { url: url.to_owned(), reason: error.without_url().to_string() }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use anyhow::{bail, Result};
    use bot_core::action::HttpRequest;
    use bot_core::bot::{Flow, HttpStep, Intent, IntentAction, Response, ResponseVariant, Step, StepKind, Target};
    use bot_core::knowledge::NoKnowledge;
    use bot_core::{BotDefinition, Classification, Classifier, Engine, EngineParts, InboundMessage, IntentId, Lang, MemoryStore, ScoredIntent};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Starts a server on 127.0.0.1 that reads requests and never responds.
    async fn silent_server() -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
                });
            }
        });
        Ok(format!("http://{address}/orders/1"))
    }

    /// Starts a server on 127.0.0.1 that responds to every request with `body`.
    async fn answering_server(body: String) -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        Ok(format!("http://{address}/orders/1"))
    }

    fn client(default_timeout: Duration) -> Result<ReqwestClient> {
        Ok(ReqwestClient::new(HttpClientConfig { default_timeout, ..HttpClientConfig::default() })?)
    }

    fn get(url: &str, timeout: Option<Duration>) -> HttpRequest {
        HttpRequest { method: "GET".to_owned(), url: url.to_owned(), body: None, timeout }
    }

    #[tokio::test]
    async fn default_timeout_applies_without_step_timeout() -> Result<()> {
        let url = silent_server().await?;
        let client = client(Duration::from_millis(200))?;
        let started = Instant::now();

        let result = client.send(get(&url, None)).await;

        assert!(matches!(result, Err(HttpError::Timeout { timeout, .. }) if timeout == Duration::from_millis(200)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        Ok(())
    }

    #[tokio::test]
    async fn step_timeout_overrides_the_default() -> Result<()> {
        let url = silent_server().await?;
        let client = client(Duration::from_secs(60))?;

        let result = client.send(get(&url, Some(Duration::from_millis(100)))).await;

        assert!(matches!(result, Err(HttpError::Timeout { timeout, .. }) if timeout == Duration::from_millis(100)), "{result:?}");
        Ok(())
    }

    #[tokio::test]
    async fn response_over_the_limit_fails() -> Result<()> {
        let url = answering_server(format!("\"{}\"", "x".repeat(5000))).await?;
        let config = HttpClientConfig { max_response_bytes: 4096, ..HttpClientConfig::default() };
        let client = ReqwestClient::new(config)?;

        let result = client.send(get(&url, None)).await;

        assert!(matches!(result, Err(HttpError::ResponseTooLarge { max_bytes: 4096, .. })), "{result:?}");
        Ok(())
    }

    #[tokio::test]
    async fn response_within_the_limit_is_read() -> Result<()> {
        let url = answering_server(r#"{"status": "shipped"}"#.to_owned()).await?;

        let response = client(Duration::from_secs(5))?.send(get(&url, None)).await?;

        assert_eq!(response.body["status"], "shipped");
        Ok(())
    }

    struct AlwaysOrder;

    impl Classifier for AlwaysOrder {
        fn classify(&self, _text: &str) -> Classification {
            Classification { ranking: vec![ScoredIntent { intent: IntentId::new("order"), confidence: 1.0 }] }
        }
    }

    fn response(text: &str) -> Response {
        let variant = ResponseVariant { text: text.to_owned(), buttons: Vec::new() };
        Response { variants: [(Lang::new("en"), vec![variant])].into() }
    }

    /// Builds a bot whose `order` flow calls `url` and sends `lookup_failed` on error.
    fn order_bot(url: &str) -> BotDefinition {
        let mut bot = BotDefinition::default();
        let http = HttpStep {
            method: "GET".to_owned(),
            url: url.to_owned(),
            body: None,
            timeout_ms: None,
            save: Default::default(),
            on_error: Some(Target::Flow("failed".into())),
            on_status: Default::default(),
        };
        let steps = vec![Step { id: None, kind: StepKind::Http(http) }, Step { id: None, kind: StepKind::Say("found".into()) }];
        bot.flows.insert("order".into(), Flow { steps });
        bot.flows.insert("failed".into(), Flow { steps: vec![Step { id: None, kind: StepKind::Say("lookup_failed".into()) }] });
        let examples = [(Lang::new("en"), vec!["where is my order".to_owned()])].into();
        bot.intents.insert("order".into(), Intent { examples, action: IntentAction::Flow("order".into()), interrupts: false });
        bot.responses.insert("found".into(), response("Found it."));
        bot.responses.insert("lookup_failed".into(), response("The order service is slow; try again later."));
        bot
    }

    #[tokio::test]
    async fn slow_action_takes_the_flow_error_path() -> Result<()> {
        let url = silent_server().await?;
        let http = Arc::new(client(Duration::from_millis(200))?);
        let parts = EngineParts { classifier: Arc::new(AlwaysOrder), knowledge: Arc::new(NoKnowledge), http, store: Arc::new(MemoryStore::new()) };
        let engine = Engine::new(Arc::new(order_bot(&url)), parts);

        let outcome = engine.handle(InboundMessage::text("web:slow", "web", "where is my order")).await?;

        let replies: Vec<&str> = outcome.events.iter().filter_map(|event| event.reply()).map(|reply| reply.text.as_str()).collect();
        if replies != ["The order service is slow; try again later."] {
            bail!("expected the on_error reply, got {replies:?}");
        }
        Ok(())
    }
}
