//! The bot definition: what a bot folder of YAML describes, after loading and
//! validation. The `lepton-flows` crate builds it; the engine runs it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::handoff::HandoffReason;
use crate::ids::{FlowId, IntentId, Lang, ResponseId, SlotName, StepId};
use crate::knowledge::{Article, FaqEntry};

/// A whole bot: settings, intents, responses, slots, flows and knowledge sources.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BotDefinition {
    pub settings: Settings,
    pub intents: BTreeMap<IntentId, Intent>,
    pub responses: BTreeMap<ResponseId, Response>,
    pub slots: BTreeMap<SlotName, SlotDefinition>,
    pub flows: BTreeMap<FlowId, Flow>,
    pub faq: Vec<FaqEntry>,
    pub articles: Vec<Article>,
}

/// The intent the classifier learns from the FAQ questions and their variants.
/// When it wins, the engine answers from the knowledge base. Intent names in
/// YAML cannot start with `_`, so it never clashes with a bot's own intent.
pub const KNOWLEDGE_INTENT: &str = "_knowledge";

impl BotDefinition {
    /// The training examples, in a stable order: `(text, intent)`. Besides the
    /// intents' own examples, every FAQ question and variant is an example of
    /// [`KNOWLEDGE_INTENT`], so that the classifier tells "a question the
    /// knowledge base answers" apart from the flows' intents instead of forcing
    /// such a question onto the nearest intent.
    pub fn training_examples(&self) -> Vec<(String, IntentId)> {
        let mut examples = Vec::new();
        for (id, intent) in &self.intents {
            for texts in intent.examples.values() {
                for text in texts {
                    examples.push((text.clone(), id.clone()));
                }
            }
        }

        let knowledge = IntentId::new(KNOWLEDGE_INTENT);
        for entry in &self.faq {
            for text in std::iter::once(&entry.question).chain(&entry.variants) {
                examples.push((text.clone(), knowledge.clone()));
            }
        }
        examples
    }
}

/// The `settings:` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub name: String,
    /// Languages every response must be translated into; the first is the default.
    pub languages: Vec<Lang>,
    /// A pretrained sentence encoder for the classifier and the knowledge
    /// search; `None` keeps the embedded model only.
    #[serde(default)]
    pub encoder: Option<EncoderSettings>,
    pub classifier: ClassifierSettings,
    pub knowledge: KnowledgeSettings,
    pub handoff: HandoffSettings,
    pub session: SessionSettings,
    /// Where sessions are kept; `None` leaves the choice to the server's default.
    pub session_store: Option<StoreKind>,
    pub redis: RedisSettings,
    /// Values available to `{name}` interpolation in responses and HTTP actions.
    pub variables: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name: "bot".to_owned(),
            languages: vec![Lang::new("en")],
            encoder: None,
            classifier: ClassifierSettings::default(),
            knowledge: KnowledgeSettings::default(),
            handoff: HandoffSettings::default(),
            session: SessionSettings::default(),
            session_store: None,
            redis: RedisSettings::default(),
            variables: BTreeMap::new(),
        }
    }
}

impl Settings {
    pub fn default_language(&self) -> Lang {
        self.languages.first().cloned().unwrap_or_else(|| Lang::new("en"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifierSettings {
    /// The top intent's confidence must reach this, else the message falls back.
    pub threshold: f32,
    /// The top two confidences must differ by at least this, else the message falls back.
    pub margin: f32,
    /// Seed for training, so that the same examples give the same model.
    pub seed: u64,
    /// Which model classifies intents.
    #[serde(default)]
    pub model: ClassifierModel,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self { threshold: 0.5, margin: 0.1, seed: 42, model: ClassifierModel::default() }
    }
}

/// The model behind the intent classifier (`settings.classifier.model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierModel {
    /// The encoder's head when `settings.encoder` is set, else the embedded model.
    #[default]
    Auto,
    /// The embedded model, even when an encoder is configured.
    Embedded,
    /// A head trained on the encoder's embeddings; needs `settings.encoder`.
    Encoder,
}

impl ClassifierModel {
    pub const NAMES: [&'static str; 3] = ["auto", "embedded", "encoder"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "embedded" => Some(Self::Embedded),
            "encoder" => Some(Self::Encoder),
            _ => None,
        }
    }

    /// Whether the encoder classifies, given whether one is configured.
    pub fn uses_encoder(self, encoder_configured: bool) -> bool {
        match self {
            Self::Auto => encoder_configured,
            Self::Embedded => false,
            Self::Encoder => true,
        }
    }
}

/// A pretrained sentence encoder (`settings.encoder`). Plain values here; the
/// server turns them into the encoder crate's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderSettings {
    /// A model folder (relative to the bot folder, or absolute) or a Hugging
    /// Face id `org/name` found in the local Hugging Face cache.
    pub model: String,
    /// `None`: the folder's `1_Pooling/config.json` decides, else mean.
    pub pooling: Option<EncoderPooling>,
    /// Prepended to customer messages, such as `query: ` for e5 models.
    pub query_prefix: String,
    /// Prepended to FAQ questions and article chunks, such as `passage: `.
    pub passage_prefix: String,
    pub device: EncoderDevice,
    /// Tokens kept of a text, special tokens included. `None`: the model
    /// folder's sentence-transformers `max_seq_length`, else 256.
    pub max_tokens: Option<usize>,
    /// The most texts in one forward pass.
    pub batch_size: usize,
    /// How long the batcher waits for more texts after the first, in milliseconds.
    pub batch_wait_ms: u64,
}

impl EncoderSettings {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            pooling: None,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            device: EncoderDevice::Cpu,
            max_tokens: None,
            batch_size: 32,
            batch_wait_ms: 2,
        }
    }
}

/// How an encoder turns token vectors into one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderPooling {
    Mean,
    Cls,
}

/// Where an encoder runs: `cpu`, `cuda` (GPU 0) or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderDevice {
    Cpu,
    Cuda(usize),
}

impl EncoderDevice {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(Self::Cpu),
            "cuda" => Some(Self::Cuda(0)),
            _ => name.strip_prefix("cuda:")?.parse().ok().map(Self::Cuda),
        }
    }
}

impl std::fmt::Display for EncoderDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnowledgeSettings {
    /// The minimum relevance score for a knowledge answer; below it, no answer.
    pub min_score: f32,
    /// Answer from the knowledge base when no intent matches, before falling back.
    pub answer_unmatched: bool,
    /// Search the words of FAQ entries and articles (BM25).
    #[serde(default = "default_true")]
    pub bm25: bool,
    /// Search by the encoder's embeddings too; used only when an encoder is set.
    #[serde(default = "default_true")]
    pub embeddings: bool,
    /// The cosine similarity below which an embedding match is no candidate;
    /// `None` leaves it to the knowledge search's measured default.
    #[serde(default)]
    pub min_similarity: Option<f32>,
}

fn default_true() -> bool {
    true
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self { min_score: 0.5, answer_unmatched: true, bm25: true, embeddings: true, min_similarity: None }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandoffSettings {
    /// Consecutive fallbacks after which the bot hands off; 0 turns this off.
    pub after_fallbacks: u32,
    /// Seconds a customer waits for an agent before the bot offers to take a
    /// contact or continue later (response `handoff_no_agent`); 0 turns this off.
    #[serde(default = "default_no_agent_after_seconds")]
    pub no_agent_after_seconds: u64,
    /// The helpdesk that conversations with people are forwarded to.
    #[serde(default)]
    pub adapter: HandoffAdapterSettings,
}

fn default_no_agent_after_seconds() -> u64 {
    300
}

impl Default for HandoffSettings {
    fn default() -> Self {
        Self { after_fallbacks: 2, no_agent_after_seconds: default_no_agent_after_seconds(), adapter: HandoffAdapterSettings::default() }
    }
}

/// Where conversations with people are forwarded (`settings.handoff.adapter`).
/// The secrets each helpdesk needs come from the environment, never from here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HandoffAdapterSettings {
    /// Only the built-in console; nothing is forwarded.
    #[default]
    Console,
    /// A signed JSON POST to `url` for each event.
    Webhook { url: String },
    /// A Chatwoot inbox of type API, reached at `url` (the installation's base URL).
    Chatwoot { url: String, account_id: u64, inbox_id: u64 },
}

impl HandoffAdapterSettings {
    pub const NAMES: [&'static str; 3] = ["console", "webhook", "chatwoot"];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Webhook { .. } => "webhook",
            Self::Chatwoot { .. } => "chatwoot",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionSettings {
    /// Seconds of inactivity after which a session expires.
    pub ttl_seconds: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { ttl_seconds: 24 * 60 * 60 }
    }
}

/// The kind of session store a server opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The on-disk store in the data folder; one server process.
    Embedded,
    /// Process memory, lost on exit.
    Memory,
    /// Redis, shared by every server process that uses the same URL and key prefix.
    Redis,
}

impl StoreKind {
    pub const NAMES: [&'static str; 3] = ["embedded", "memory", "redis"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "embedded" => Some(Self::Embedded),
            "memory" => Some(Self::Memory),
            "redis" => Some(Self::Redis),
            _ => None,
        }
    }
}

/// How to reach Redis when the session store is `redis`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RedisSettings {
    /// `redis://[:password@]host[:port][/db]` or `rediss://` for TLS. It may hold a
    /// password, so it is never logged whole.
    pub url: Option<String>,
    /// The prefix of every key; servers of one bot share it, other bots need their own.
    pub key_prefix: Option<String>,
    /// Transcript events kept per conversation; older ones are dropped.
    pub max_events: Option<usize>,
    /// True when `url` names the seed nodes of a Redis Cluster, separated by commas.
    pub cluster: Option<bool>,
}

/// An intent: example phrasings per language and what to do when it is recognised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Intent {
    pub examples: BTreeMap<Lang, Vec<String>>,
    pub action: IntentAction,
    /// May interrupt a form that waits for a slot (cancel, talk to a human, FAQ questions).
    pub interrupts: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentAction {
    /// Start a flow.
    Flow(FlowId),
    /// Send a response; during a form, send it and ask the form's question again.
    Respond(ResponseId),
}

/// A response: variants per language. The engine picks one variant per turn.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub variants: BTreeMap<Lang, Vec<ResponseVariant>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseVariant {
    /// Text with `{slot}` and `{variable}` placeholders.
    pub text: String,
    pub buttons: Vec<Button>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Button {
    pub title: String,
    /// Sent as the customer's message when tapped; `/intent_name` selects that intent directly.
    pub payload: String,
}

/// A slot's type and validation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlotDefinition {
    pub kind: SlotKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    Text,
    Number { min: Option<f64>, max: Option<f64> },
    Email,
    Phone,
    /// The whole trimmed answer must match `pattern`.
    Regex { pattern: String },
    /// One of a fixed set of values, each with accepted synonyms per language.
    Choice { choices: Vec<Choice> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Choice {
    /// The value stored in the slot.
    pub value: String,
    pub synonyms: BTreeMap<Lang, Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flow {
    pub steps: Vec<Step>,
}

impl Flow {
    /// Returns the index of the step with the given id.
    pub fn step_index(&self, id: &StepId) -> Option<usize> {
        self.steps.iter().position(|step| step.id.as_ref() == Some(id))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub id: Option<StepId>,
    pub kind: StepKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Say(ResponseId),
    Ask(AskStep),
    Branch(Vec<BranchArm>),
    Http(HttpStep),
    /// Answer from the knowledge base with the customer's last message, or `query` when set.
    Knowledge { query: Option<String>, on_miss: Option<Target> },
    /// Hand the conversation to a person, recording why (`flow_step` unless the
    /// YAML names a reason, such as `requested` for a "talk to a human" flow).
    Handoff { reason: HandoffReason },
    Goto(Target),
    End,
}

/// The place execution continues at: a step of the current flow, another flow, or a handoff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Step(StepId),
    Flow(FlowId),
    Handoff,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AskStep {
    pub slot: SlotName,
    pub prompt: ResponseId,
    /// Sent when the answer does not validate; the prompt is sent when unset.
    pub invalid: Option<ResponseId>,
    pub max_attempts: u32,
    /// The target after `max_attempts` invalid answers; a handoff when unset.
    pub on_exhausted: Option<Target>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BranchArm {
    /// `None` for the `else` arm, which always matches.
    pub condition: Option<Condition>,
    pub target: Target,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    pub slot: SlotName,
    pub test: ConditionTest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionTest {
    Equals(String),
    In(Vec<String>),
    IsSet(bool),
    LessThan(f64),
    GreaterThan(f64),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HttpStep {
    pub method: String,
    /// URL with `{slot}` and `{variable}` placeholders; slot values are percent-encoded.
    pub url: String,
    /// JSON body; `{slot}` placeholders in its strings are filled in.
    pub body: Option<serde_json::Value>,
    /// The request's timeout; `None` leaves it to the HTTP client's default.
    pub timeout_ms: Option<u64>,
    /// Slot to set from a JSON pointer (RFC 6901) into the response body.
    pub save: BTreeMap<SlotName, String>,
    /// The target when the request fails, times out or returns a non-2xx status.
    pub on_error: Option<Target>,
    /// Per-status targets, checked before `on_error` (for example 404 to "order not found").
    pub on_status: BTreeMap<u16, Target>,
}
