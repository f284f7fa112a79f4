//! The HTTP client that flows' `http` steps use, on reqwest.

use async_trait::async_trait;
use bot_core::{HttpClient, HttpError, HttpRequest, HttpResponse};

/// Sends HTTP actions with one shared connection pool.
pub struct ReqwestClient {
    client: reqwest::Client,
}

impl ReqwestClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("lepton/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self { client })
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

        let mut builder = self.client.request(method, url).timeout(request.timeout);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| classify(&request, e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| classify(&request, e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(HttpResponse { status, body })
    }
}

fn classify(request: &HttpRequest, error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        return HttpError::Timeout { url: request.url.clone(), timeout: request.timeout };
    }
    HttpError::Failed { url: request.url.clone(), reason: error.without_url().to_string() }
}
