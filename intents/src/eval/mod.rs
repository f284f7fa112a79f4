//! Measuring a classifier on public data sets: loaders for JSON Lines, CSV and
//! CLINC150, and a report with accuracy, macro-F1, per-intent scores and
//! out-of-scope detection.

mod dataset;
mod embedding_cache;
mod encoder;
mod report;

pub use dataset::{Clinc150, Dataset, LabeledText, CLINC_OUT_OF_SCOPE};
pub use embedding_cache::EmbeddingCache;
pub use encoder::{run_encoder_eval, EncoderEvalConfig};
pub use report::{
    evaluate, intent_scores, run_eval, threshold_keeping, validated_threshold, CalibratedThreshold, EvalConfig, EvalReport, IntentScores,
    OutOfScopeReport,
};
