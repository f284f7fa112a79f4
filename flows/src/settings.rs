//! The `settings:` section.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;

use bot_core::bot::{
    ClassifierModel, ClassifierSettings, EncoderDevice, EncoderPooling, EncoderSettings, HandoffSettings, KnowledgeSettings, RedisSettings,
    SessionSettings, Settings, StoreKind,
};
use bot_core::Lang;

use crate::convert::Converter;
use crate::cx::Fields;
use crate::handoff_adapter::ADAPTER_FIELDS;
use crate::tree::{Loc, Node};

const SETTINGS_FIELDS: [&str; 10] =
    ["name", "languages", "encoder", "classifier", "knowledge", "handoff", "session", "session_store", "redis", "variables"];

const ENCODER_FIELDS: [&str; 8] = ["model", "pooling", "query_prefix", "passage_prefix", "device", "max_tokens", "batch_size", "batch_wait_ms"];

/// The largest `encoder.max_tokens`: BERT-family models have 512 positions.
const MAX_ENCODER_TOKENS: u64 = 512;
/// The smallest `encoder.max_tokens`: the count includes the two special
/// tokens around a text, so 3 keeps one token of the text itself.
const MIN_ENCODER_TOKENS: u64 = 3;

/// The maximum of `handoff.no_agent_after_seconds`: 30 days. That is longer
/// than any sensible session TTL, so a larger value is a typo.
const MAX_NO_AGENT_AFTER_SECONDS: u64 = 30 * 24 * 60 * 60;

/// The folder of articles when `settings.knowledge.articles` is not given.
pub(crate) const DEFAULT_ARTICLES_FOLDER: &str = "articles";

/// A folder of Markdown articles named in the settings; `loc` is `None` for the default
/// folder, which may be absent.
pub(crate) struct ArticleFolder {
    pub path: String,
    pub loc: Option<Loc>,
}

impl Converter<'_, '_> {
    /// Converts `settings:`, setting the declared languages and variables. Reports a
    /// missing section and falls back to the defaults. `dir` is the bot folder,
    /// against which the encoder's model folder is checked.
    pub fn convert_settings(&mut self, dir: &Path) -> (Settings, Vec<ArticleFolder>) {
        let mut settings = Settings::default();
        let default_folders = vec![ArticleFolder { path: DEFAULT_ARTICLES_FOLDER.to_owned(), loc: None }];
        let Some((key, value)) = self.sections.settings else {
            return (settings, default_folders);
        };
        let Some(fields) = self.cx.fields(value, key.loc, "settings", &SETTINGS_FIELDS) else {
            return (settings, default_folders);
        };

        if let Some(node) = fields.get("name") {
            settings.name = self.cx.text(node, "the bot name").unwrap_or(settings.name);
        }
        if let Some(node) = fields.require(&mut self.cx, "languages") {
            self.languages = self.read_languages(node);
            settings.languages = self.languages.clone().unwrap_or(settings.languages);
        }
        if let Some(node) = fields.get("encoder") {
            settings.encoder = self.read_encoder(node, key.loc, dir);
        }
        if let Some(node) = fields.get("classifier") {
            settings.classifier = self.read_classifier(node, key.loc, fields.has("encoder"));
        }
        let mut folders = default_folders;
        if let Some(node) = fields.get("knowledge") {
            (settings.knowledge, folders) = self.read_knowledge(node, key.loc, folders, fields.has("encoder"));
        }
        if let Some(node) = fields.get("handoff") {
            settings.handoff = self.read_handoff(node, key.loc);
        }
        if let Some(node) = fields.get("session") {
            settings.session = self.read_session(node, key.loc);
        }
        if let Some(node) = fields.get("session_store") {
            settings.session_store = self.read_store_kind(node);
        }
        if let Some(node) = fields.get("redis") {
            settings.redis = self.read_redis(node, key.loc);
        }
        settings.variables = self.read_variables(&fields);
        self.variables = settings.variables.keys().cloned().collect();
        (settings, folders)
    }

    fn read_languages(&mut self, node: &Node) -> Option<Vec<Lang>> {
        let items = self.cx.list(node, "settings.languages")?;
        if items.is_empty() {
            self.cx.error(node.loc, "settings.languages is empty; list at least one language, such as [en]");
            return None;
        }
        let mut languages = Vec::new();
        let mut valid = true;
        for item in items {
            let Some(code) = self.cx.string(item, "a language code") else {
                valid = false;
                continue;
            };
            match Lang::from_tag(&code) {
                Some(lang) if lang.as_str() == code => {
                    if languages.contains(&lang) {
                        self.cx.error(item.loc, format!("language `{code}` is listed twice; remove one"));
                    } else {
                        languages.push(lang);
                    }
                }
                Some(lang) => {
                    self.cx.error(item.loc, format!("language `{code}` is not a primary language code; write `{lang}`"));
                    valid = false;
                }
                None => {
                    self.cx.error(item.loc, format!("invalid language code `{code}`; use a two- or three-letter code such as `en` or `zh`"));
                    valid = false;
                }
            }
        }
        valid.then_some(languages)
    }

    /// Reads `settings.encoder`; `None` when it is invalid. A model that is no
    /// folder and not in the Hugging Face cache is reported at `model:`.
    fn read_encoder(&mut self, node: &Node, owner: Loc, dir: &Path) -> Option<EncoderSettings> {
        let fields = self.cx.fields(node, owner, "settings.encoder", &ENCODER_FIELDS)?;
        let model_node = fields.require(&mut self.cx, "model")?;
        let model = self.cx.text(model_node, "settings.encoder.model")?;
        let mut encoder = EncoderSettings::new(model.trim());
        self.example_places.insert_setting("settings.encoder.model", self.cx.example_place(model_node.loc));
        let mut valid = true;
        if let Err(error) = crate::model_folder::resolve_model(dir, &encoder.model, &crate::model_folder::HubCache::from_env()) {
            self.cx.error(model_node.loc, error.to_string());
            valid = false;
        }

        if let Some(node) = fields.get("pooling") {
            match self.cx.string(node, "settings.encoder.pooling").as_deref() {
                Some("mean") => encoder.pooling = Some(EncoderPooling::Mean),
                Some("cls") => encoder.pooling = Some(EncoderPooling::Cls),
                Some(other) => {
                    self.cx.error(node.loc, format!("unknown pooling `{other}`; use mean or cls"));
                    valid = false;
                }
                None => valid = false,
            }
        }
        for (name, prefix) in [("query_prefix", &mut encoder.query_prefix), ("passage_prefix", &mut encoder.passage_prefix)] {
            let Some(node) = fields.get(name) else { continue };
            match self.cx.string(node, &format!("settings.encoder.{name}")) {
                Some(text) => *prefix = text,
                None => valid = false,
            }
        }
        if let Some(node) = fields.get("device") {
            let name = self.cx.string(node, "settings.encoder.device");
            match name.as_deref().map(|name| (name, EncoderDevice::from_name(name))) {
                Some((_, Some(device))) => encoder.device = device,
                Some((name, None)) => {
                    self.cx.error(node.loc, format!("unknown device `{name}`; use cpu, cuda or cuda:N such as cuda:1"));
                    valid = false;
                }
                None => valid = false,
            }
        }
        if let Some(node) = fields.get("max_tokens") {
            self.example_places.insert_setting("settings.encoder.max_tokens", self.cx.example_place(node.loc));
            match self.cx.integer(node, "settings.encoder.max_tokens", MIN_ENCODER_TOKENS, MAX_ENCODER_TOKENS) {
                Some(value) => encoder.max_tokens = Some(value as usize),
                None => valid = false,
            }
        }
        if let Some(node) = fields.get("batch_size") {
            match self.cx.integer(node, "settings.encoder.batch_size", 1, 4096) {
                Some(value) => encoder.batch_size = value as usize,
                None => valid = false,
            }
        }
        if let Some(node) = fields.get("batch_wait_ms") {
            match self.cx.integer(node, "settings.encoder.batch_wait_ms", 0, 1000) {
                Some(value) => encoder.batch_wait_ms = value,
                None => valid = false,
            }
        }
        valid.then_some(encoder)
    }

    fn read_classifier(&mut self, node: &Node, owner: Loc, has_encoder: bool) -> ClassifierSettings {
        let mut classifier = ClassifierSettings::default();
        let allowed = ["threshold", "margin", "seed", "model"];
        let Some(fields) = self.cx.fields(node, owner, "settings.classifier", &allowed) else { return classifier };
        if let Some(value) = fields.get("threshold").and_then(|n| self.cx.number_in(n, "classifier.threshold", 0.0, 1.0)) {
            classifier.threshold = value as f32;
        }
        if let Some(value) = fields.get("margin").and_then(|n| self.cx.number_in(n, "classifier.margin", 0.0, 1.0)) {
            classifier.margin = value as f32;
        }
        if let Some(value) = fields.get("seed").and_then(|n| self.cx.integer(n, "classifier.seed", 0, u64::MAX)) {
            classifier.seed = value;
        }
        if let Some(node) = fields.get("model") {
            let name = self.cx.string(node, "settings.classifier.model");
            match name.as_deref().map(|name| (name, ClassifierModel::from_name(name))) {
                Some((_, Some(ClassifierModel::Encoder))) if !has_encoder => {
                    self.cx.error(node.loc, "settings.classifier.model is `encoder` but settings.encoder is not set; add settings.encoder with a model, or use auto or embedded");
                }
                Some((_, Some(model))) => classifier.model = model,
                Some((name, None)) => {
                    let names = ClassifierModel::NAMES.join(", ");
                    self.cx.error(node.loc, format!("unknown classifier model `{name}`; use one of {names}"));
                }
                None => {}
            }
        }
        classifier
    }

    fn read_knowledge(
        &mut self,
        node: &Node,
        owner: Loc,
        default_folders: Vec<ArticleFolder>,
        has_encoder: bool,
    ) -> (KnowledgeSettings, Vec<ArticleFolder>) {
        let mut knowledge = KnowledgeSettings::default();
        let allowed = ["min_score", "answer_unmatched", "articles", "bm25", "embeddings", "min_similarity"];
        let Some(fields) = self.cx.fields(node, owner, "settings.knowledge", &allowed) else {
            return (knowledge, default_folders);
        };
        if let Some(value) = fields.get("min_score").and_then(|n| self.cx.number_in(n, "knowledge.min_score", 0.0, f64::from(f32::MAX))) {
            knowledge.min_score = value as f32;
        }
        if let Some(value) = fields.get("answer_unmatched").and_then(|n| self.cx.bool(n, "knowledge.answer_unmatched")) {
            knowledge.answer_unmatched = value;
        }
        if let Some(value) = fields.get("bm25").and_then(|n| self.cx.bool(n, "knowledge.bm25")) {
            knowledge.bm25 = value;
        }
        if let Some(value) = fields.get("embeddings").and_then(|n| self.cx.bool(n, "knowledge.embeddings")) {
            knowledge.embeddings = value;
        }
        if let Some(value) = fields.get("min_similarity").and_then(|n| self.cx.number_in(n, "knowledge.min_similarity", -1.0, 1.0)) {
            knowledge.min_similarity = Some(value as f32);
        }
        let searches_embeddings = knowledge.embeddings && has_encoder;
        if let Some(entry) = fields.entry("bm25").filter(|_| !knowledge.bm25 && !searches_embeddings) {
            let why = if has_encoder { "knowledge.embeddings is false" } else { "settings.encoder is not set" };
            let message = format!("knowledge.bm25 is false and {why}, so the knowledge base would never answer; turn one of them on");
            self.cx.error(entry.value.loc, message);
        }
        let Some(node) = fields.get("articles") else { return (knowledge, default_folders) };
        (knowledge, self.read_article_folders(node))
    }

    fn read_article_folders(&mut self, node: &Node) -> Vec<ArticleFolder> {
        let Some(folders) = self.cx.strings(node, "an article folder") else { return Vec::new() };
        let mut valid = Vec::new();
        for (path, loc) in folders {
            let escapes = path.starts_with('/') || path.split(['/', '\\']).any(|part| part == "..");
            if escapes {
                self.cx.error(loc, format!("article folder `{path}` is outside the bot folder; give a path inside it, such as `articles`"));
                continue;
            }
            valid.push(ArticleFolder { path, loc: Some(loc) });
        }
        valid
    }

    fn read_handoff(&mut self, node: &Node, owner: Loc) -> HandoffSettings {
        let mut handoff = HandoffSettings::default();
        let allowed = [&["after_fallbacks", "no_agent_after_seconds"][..], &ADAPTER_FIELDS[..]].concat();
        let Some(fields) = self.cx.fields(node, owner, "settings.handoff", &allowed) else { return handoff };
        let limit = u64::from(u32::MAX);
        if let Some(value) = fields.get("after_fallbacks").and_then(|n| self.cx.integer(n, "handoff.after_fallbacks", 0, limit)) {
            handoff.after_fallbacks = value as u32;
        }
        let no_agent = fields.get("no_agent_after_seconds");
        if let Some(value) = no_agent.and_then(|n| self.cx.integer(n, "handoff.no_agent_after_seconds", 0, MAX_NO_AGENT_AFTER_SECONDS)) {
            handoff.no_agent_after_seconds = value;
        }
        handoff.adapter = self.read_handoff_adapter(&fields);
        handoff
    }

    fn read_session(&mut self, node: &Node, owner: Loc) -> SessionSettings {
        let mut session = SessionSettings::default();
        let Some(fields) = self.cx.fields(node, owner, "settings.session", &["ttl_seconds"]) else { return session };
        if let Some(value) = fields.get("ttl_seconds").and_then(|n| self.cx.integer(n, "session.ttl_seconds", 1, u64::MAX)) {
            session.ttl_seconds = value;
        }
        session
    }

    fn read_store_kind(&mut self, node: &Node) -> Option<StoreKind> {
        let name = self.cx.string(node, "settings.session_store")?;
        let kind = StoreKind::from_name(&name);
        if kind.is_none() {
            let names = StoreKind::NAMES.join(", ");
            self.cx.error(node.loc, format!("unknown session store `{name}`; use one of {names}"));
        }
        kind
    }

    fn read_redis(&mut self, node: &Node, owner: Loc) -> RedisSettings {
        let mut redis = RedisSettings::default();
        let Some(fields) = self.cx.fields(node, owner, "settings.redis", &["url", "key_prefix", "max_events", "cluster"]) else { return redis };
        if let Some(node) = fields.get("url") {
            redis.url = self.cx.text(node, "settings.redis.url");
            let bad_scheme = |url: &&str| url.split(',').any(|seed| !seed.trim().starts_with("redis://") && !seed.trim().starts_with("rediss://"));
            if let Some(url) = redis.url.as_deref().filter(bad_scheme) {
                let scheme = url.split("://").next().filter(|_| url.contains("://")).unwrap_or("none");
                self.cx.error(node.loc, format!("settings.redis.url has scheme `{scheme}`; use redis://host:port/db or rediss:// for TLS"));
                redis.url = None;
            }
        }
        if let Some(node) = fields.get("key_prefix") {
            redis.key_prefix = self.cx.text(node, "settings.redis.key_prefix");
        }
        if let Some(node) = fields.get("cluster") {
            redis.cluster = self.cx.bool(node, "settings.redis.cluster");
        }
        if let Some(node) = fields.get("max_events") {
            let max = u64::from(u32::MAX);
            redis.max_events = self.cx.integer(node, "settings.redis.max_events", 10, max).map(|n| n as usize);
        }
        redis
    }

    fn read_variables(&mut self, fields: &Fields<'_>) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        let Some(node) = fields.get("variables") else { return variables };
        if node.is_null() {
            return variables;
        }
        let Some(entries) = self.cx.mapping(node, "settings.variables") else { return variables };
        let mut seen = BTreeSet::new();
        for entry in entries {
            let Some(name) = self.cx.name(&entry.key, "variable name") else { continue };
            if !seen.insert(name.clone()) {
                continue;
            }
            if self.sections.slots.contains(&name) {
                let message = format!("variable `{name}` has the name of a slot, so `{{{name}}}` would be ambiguous; rename one of them");
                self.cx.error(entry.key.loc, message);
            }
            if let Some(value) = self.cx.string(&entry.value, &format!("the value of variable `{name}`")) {
                variables.insert(name, value);
            }
        }
        variables
    }
}
