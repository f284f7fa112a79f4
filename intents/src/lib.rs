//! Intent classification for Lepton, in English and Chinese, without a word
//! segmenter.
//!
//! A text is normalised (lowercase, full-width forms folded, digits folded to
//! `0`) and turned into hashed features. These are word unigrams, bigrams and
//! skip-bigrams, the first and last word, and character n-grams: 1-4 inside
//! alphabetic words, 1-3 inside runs of CJK characters, where every character
//! also counts as a word. Each feature is weighted by sublinear TF times IDF.
//! A small bias-free network maps them to intents: an embedding-bag hidden
//! layer with ReLU and dropout, then a softmax layer. Three such networks with
//! different seeds form an ensemble whose probabilities are averaged.
//! Training uses candle and candle-nn's `AdamW` and is deterministic for a
//! seed; inference runs in plain `f32` loops (tens of microseconds a message).
//! A model is stored as safetensors plus JSON metadata holding a hash of the
//! examples and configuration, so a stale model is retrained.
//!
//! [`EncoderIntentModel`] classifies with a pretrained sentence encoder
//! (`lepton-encoder`) instead: a small head trained with candle on the
//! encoder's frozen embeddings, optionally blended with the n-gram model. It
//! understands paraphrases that share no words with the examples.
//!
//! Confidence follows familiarity: n-grams never seen in training lengthen a
//! text's vector before normalisation without adding to the known part, so a
//! text made mostly of unseen n-grams gets flat, low confidences.
//!
//! ```no_run
//! use bot_core::{Classifier, IntentId};
//! use lepton_intents::{IntentModel, TrainConfig};
//!
//! # fn main() -> Result<(), lepton_intents::IntentError> {
//! let examples = vec![
//!     ("where is my order".to_owned(), IntentId::new("order_status")),
//!     ("我的订单到哪了".to_owned(), IntentId::new("order_status")),
//!     ("I want a refund".to_owned(), IntentId::new("refund")),
//!     ("我要退款".to_owned(), IntentId::new("refund")),
//! ];
//! let dir = std::path::Path::new("bot/.lepton/intents");
//! let (model, trained) = IntentModel::load_or_train(dir, &examples, &TrainConfig::default())?;
//! if let Some(top) = model.classify("track my order please").decide(0.5, 0.1) {
//!     println!("{} ({:.2}), freshly trained: {trained}", top.intent, top.confidence);
//! }
//! # Ok(()) }
//! ```

mod encoder_head;
mod encoder_model;
mod error;
pub mod eval;
mod features;
mod model;
mod optim;
mod persist;
mod rng;
pub mod text;
mod train;

pub use encoder_head::HeadConfig;
pub use encoder_model::{head_training_hash, EncoderIntentModel, HEAD_METADATA_FILE, HEAD_WEIGHTS_FILE};
pub use error::{DatasetError, IntentError};
pub use features::FeatureConfig;
pub use model::IntentModel;
pub use persist::{training_hash, METADATA_FILE, WEIGHTS_FILE};
pub use train::TrainConfig;
