//! Errors of training, storing and evaluating intent models.

use std::path::PathBuf;

/// An error from training, saving or loading an [`crate::IntentModel`].
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("no training examples: give each intent at least one example")]
    NoExamples,
    #[error("invalid training config: {field} {problem}")]
    InvalidConfig { field: &'static str, problem: String },
    #[error("tensor operation failed in candle")]
    Candle(#[from] candle_core::Error),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sentence encoder failed")]
    Encoder(#[from] lepton_encoder::EncoderError),
    #[error("model file {path} is invalid: {problem}; `lepton train` retrains the model")]
    InvalidModel { path: PathBuf, problem: String },
}

/// An error from reading an evaluation data set.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("failed to read data set {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Invalid { path: PathBuf, line: usize, problem: String },
    /// A problem with a row of a JSON file that has no useful line number.
    #[error("{path}: {problem}")]
    InvalidRow { path: PathBuf, problem: String },
    #[error("unknown data set format of {path}: expected a .jsonl or .csv file")]
    UnknownFormat { path: PathBuf },
}
