//! Pretrained sentence encoders for Lepton: BERT-family models (BERT,
//! XLM-RoBERTa, MPNet) loaded from a local Hugging Face folder with candle, and a
//! batcher that runs the requests of concurrent conversations in one forward
//! pass.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lepton_encoder::{Batcher, Encoder, EncoderConfig, TextKind};
//!
//! let encoder = Encoder::load(&EncoderConfig::new("models/all-MiniLM-L6-v2"))?;
//! let batcher = Batcher::new(Arc::new(encoder));
//! let refund = batcher.embed_blocking("I want my money back", TextKind::Query)?;
//! let faq = batcher.embed_blocking("How do I get a refund?", TextKind::Passage)?;
//! println!("cosine {}", lepton_encoder::dot(&refund, &faq));
//! # Ok::<(), lepton_encoder::EncoderError>(())
//! ```

mod batcher;
mod config;
mod device;
mod encoder;
mod error;
mod finetune;
mod folder;
mod kernels;
mod mpnet;
mod network;
mod packed;
mod testing;

pub use batcher::{Batcher, BatcherStats, Progress, PASS_TIME_PER_TEXT, SLOW_PASS_FACTOR, STALL_LIMIT};
pub use config::{DeviceChoice, EncoderConfig, InvalidDevice, Pooling, TextKind};
pub use encoder::{Encoder, FORWARD_ENV, MAX_UNKNOWN_SHARE};
pub use error::EncoderError;
pub use folder::{default_max_tokens, token_limit};
pub use finetune::{check_fine_tunable, fine_tune, FineTuneConfig, FineTuneReport, FineTuneStep, PROVENANCE_FILE};
pub use testing::test_model;

/// The dot product of two vectors of equal length: the cosine for normalised ones.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
