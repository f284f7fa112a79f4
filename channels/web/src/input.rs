//! Request parsing: the JSON body extractor with JSON errors, path and query
//! extractors, id validation, and cleaning of customer text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use bot_core::{AgentId, ClientMessageId, ConversationId, Lang};
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::state::WebState;

/// Maximum length of a conversation or client message id, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// Maximum length of an agent id, in characters.
pub const MAX_AGENT_ID_CHARS: usize = 64;

/// Maximum length of a locale tag, in characters (BCP 47 tags in use are far shorter).
const MAX_LOCALE_CHARS: usize = 35;

/// A JSON request body; every rejection becomes a [`WebError`] with a JSON body.
pub struct JsonBody<T>(pub T);

impl<T> FromRequest<WebState> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection, state.config().max_body_bytes())),
        }
    }
}

fn json_rejection(rejection: JsonRejection, max: usize) -> WebError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return WebError::BodyTooLarge { max };
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => WebError::UnsupportedMediaType,
        JsonRejection::JsonDataError(error) => WebError::InvalidJson { detail: lowercase_first(&error.body_text()) },
        JsonRejection::JsonSyntaxError(error) => WebError::InvalidJson { detail: lowercase_first(&error.body_text()) },
        other => WebError::InvalidJson { detail: lowercase_first(&other.body_text()) },
    }
}

/// A query string; a value that does not parse becomes a 400 with a JSON body.
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> WebError {
    WebError::InvalidQuery { detail: lowercase_first(&rejection.body_text()) }
}

/// The `{id}` path segment, checked as a conversation id.
pub struct ConversationPath(pub ConversationId);

impl<S> FromRequestParts<S> for ConversationPath
where
    S: Send + Sync,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(raw)) => raw,
            Err(rejection) => return Err(path_rejection(rejection)),
        };
        conversation_id(&raw).map(Self)
    }
}

pub(crate) fn path_rejection(rejection: PathRejection) -> WebError {
    WebError::InvalidPath { detail: lowercase_first(&rejection.body_text()) }
}

/// Checks a conversation id: 1 to 128 characters from `[A-Za-z0-9_.:-]`.
pub fn conversation_id(raw: &str) -> Result<ConversationId, WebError> {
    if !is_valid_id(raw, MAX_ID_CHARS) {
        return Err(WebError::InvalidConversationId { id: truncated(raw) });
    }
    Ok(ConversationId::new(raw))
}

/// Checks that a customer may use this conversation id over the web channel.
///
/// Other channels prefix their ids (`telegram:42`), and the path id is the
/// engine's id, so without this check a web client could read or write another
/// channel's conversation by naming it.
pub fn web_conversation(id: &ConversationId) -> Result<(), WebError> {
    let Some((prefix, _)) = id.as_str().split_once(':') else {
        return Ok(());
    };
    if prefix == "web" {
        return Ok(());
    }
    Err(WebError::ForeignConversationId { id: id.to_string() })
}

/// Checks an agent id: 1 to 64 characters from `[A-Za-z0-9_.:-]`.
pub fn agent_id(raw: &str) -> Result<AgentId, WebError> {
    if !is_valid_id(raw, MAX_AGENT_ID_CHARS) {
        return Err(WebError::InvalidAgentId { id: truncated(raw) });
    }
    Ok(AgentId::new(raw))
}

/// Checks an optional client message id: 1 to 128 characters from `[A-Za-z0-9_.:-]`.
pub fn client_message_id(raw: Option<&str>) -> Result<Option<ClientMessageId>, WebError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if !is_valid_id(raw, MAX_ID_CHARS) {
        return Err(WebError::InvalidClientMessageId { id: truncated(raw) });
    }
    Ok(Some(ClientMessageId::new(raw)))
}

/// Reads an optional locale tag such as `zh-CN` as its language.
pub fn locale(raw: Option<&str>) -> Result<Option<Lang>, WebError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let well_formed = raw.len() <= MAX_LOCALE_CHARS
        && raw.split(['-', '_']).all(|subtag| (1..=8).contains(&subtag.len()) && subtag.chars().all(|c| c.is_ascii_alphanumeric()));
    match Lang::from_tag(raw).filter(|_| well_formed) {
        Some(lang) => Ok(Some(lang)),
        None => Err(WebError::InvalidLocale { locale: truncated(raw) }),
    }
}

/// Cleans a message text for the engine with [`bot_core::text::clean_message`]
/// (control and bidirectional characters removed, trimmed) and checks that it
/// has a visible character and is not longer than `max_bytes`.
pub fn message_text(raw: &str, max_bytes: usize) -> Result<String, WebError> {
    let text = bot_core::text::clean_message(raw).ok_or(WebError::EmptyText)?;
    if text.len() > max_bytes {
        return Err(WebError::MessageTooLarge { bytes: text.len(), max: max_bytes });
    }
    Ok(text)
}

pub use bot_core::text::{is_bidi_control, is_invisible};

fn is_valid_id(raw: &str, max_chars: usize) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    !raw.is_empty() && raw.len() <= max_chars && raw.chars().all(allowed)
}

/// Shortens a rejected value for an error message, so that a huge id is not echoed whole.
pub(crate) fn truncated(raw: &str) -> String {
    const SHOWN: usize = 40;
    match raw.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_owned(),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_strips_control_characters() -> Result<(), WebError> {
        let text = message_text("a\u{0}b\u{7}c\u{1b}[31m\r\nd\te\u{7f}\u{85}", 100)?;
        assert_eq!(text, "abc[31m\nd\te");
        Ok(())
    }

    #[test]
    fn message_text_strips_bidi_controls() -> Result<(), WebError> {
        let text = message_text("\u{202A}a\u{202B}b\u{202C}c\u{202D}d\u{202E}e\u{2066}f\u{2067}g\u{2068}h\u{2069}", 100)?;
        assert_eq!(text, "abcdefgh");
        Ok(())
    }

    #[test]
    fn message_text_keeps_direction_marks() -> Result<(), WebError> {
        assert_eq!(message_text("\u{200E}a\u{200F}b\u{61C}c", 100)?, "\u{200E}a\u{200F}b\u{61C}c");
        Ok(())
    }

    #[test]
    fn message_text_keeps_emoji_and_chinese() -> Result<(), WebError> {
        assert_eq!(message_text("👍🎉", 100)?, "👍🎉");
        assert_eq!(message_text("我想退款 order 123", 100)?, "我想退款 order 123");
        Ok(())
    }

    #[test]
    fn message_text_rejects_blank() {
        assert!(matches!(message_text(" \n\t\u{0} ", 100), Err(WebError::EmptyText)));
        assert!(matches!(message_text("", 100), Err(WebError::EmptyText)));
    }

    #[test]
    fn message_text_rejects_invisible_only() {
        for text in ["\u{200B}", " \u{200C}\u{200D}\n\u{2060}\t\u{FEFF} ", "\u{200E}", "\u{AD}\u{FE0F}\u{E0041}\u{3164}"] {
            assert!(matches!(message_text(text, 100), Err(WebError::EmptyText)), "{text:?} was accepted");
        }
    }

    #[test]
    fn message_text_keeps_invisible_inside_visible_text() -> Result<(), WebError> {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(message_text(family, 100)?, family);
        assert_eq!(message_text("\u{200B}a\u{2060}b\u{FEFF}", 100)?, "\u{200B}a\u{2060}b\u{FEFF}");
        Ok(())
    }

    #[test]
    fn is_invisible_leaves_visible_characters() {
        for c in ['a', '退', '👍', '-', '.'] {
            assert!(!is_invisible(c), "{c:?} counted as invisible");
        }
    }

    #[test]
    fn message_text_rejects_too_long() {
        let result = message_text(&"退".repeat(10), 29);
        assert!(matches!(result, Err(WebError::MessageTooLarge { bytes: 30, max: 29 })));
    }

    #[test]
    fn conversation_id_accepts_charset() -> Result<(), WebError> {
        let id = conversation_id("web:Ab-9_.x")?;
        assert_eq!(id.as_str(), "web:Ab-9_.x");
        let longest = "a".repeat(MAX_ID_CHARS);
        assert_eq!(conversation_id(&longest)?.as_str(), longest);
        Ok(())
    }

    #[test]
    fn conversation_id_rejects_bad_values() {
        for bad in ["", "a b", "a/b", "漢字", "a\u{0}", "<script>", &"a".repeat(MAX_ID_CHARS + 1)] {
            assert!(conversation_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn web_conversation_rejects_other_prefixes() {
        assert!(web_conversation(&ConversationId::new("abc")).is_ok());
        assert!(web_conversation(&ConversationId::new("web:abc")).is_ok());
        assert!(web_conversation(&ConversationId::new("telegram:42")).is_err());
    }

    #[test]
    fn locale_reads_primary_subtag() -> Result<(), WebError> {
        assert_eq!(locale(Some("zh-CN"))?, Some(Lang::new("zh")));
        assert_eq!(locale(None)?, None);
        assert_eq!(locale(Some("en_US"))?, Some(Lang::new("en")));
        assert!(locale(Some("not a locale")).is_err());
        assert!(locale(Some("en-")).is_err());
        assert!(locale(Some("zh-CN!")).is_err());
        Ok(())
    }

    #[test]
    fn truncated_shortens_long_values() {
        let shown = truncated(&"x".repeat(1000));
        assert_eq!(shown.len(), 43);
    }
}
