use std::path::PathBuf;

/// Why an encoder could not be loaded or could not encode.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("encoding failed: {0}")]
    Run(String),
    #[error("{0}")]
    FineTune(String),
    #[error("the encoder's batcher has stopped")]
    Closed,
    #[error("the encoder has run no forward pass for {seconds} s while {}", texts_wait(*.waiting))]
    Stalled { waiting: u64, seconds: u64 },
    #[error("the encoder's forward pass over {} has run for {seconds} s", count_texts(*.texts))]
    PassStalled { texts: u64, seconds: u64 },
}

fn count_texts(count: u64) -> String {
    if count == 1 {
        "1 text".to_owned()
    } else {
        format!("{count} texts")
    }
}

fn texts_wait(count: u64) -> String {
    if count == 1 {
        "1 text waits".to_owned()
    } else {
        format!("{count} texts wait")
    }
}

impl EncoderError {
    pub(crate) fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Model { path: path.into(), message: message.into() }
    }

    pub(crate) fn run(error: impl std::fmt::Display) -> Self {
        Self::Run(error.to_string())
    }
}
