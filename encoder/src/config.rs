use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the token vectors, padding excluded (sentence-transformers, e5).
    Mean,
    /// The vector of the first token (`[CLS]`).
    Cls,
}

/// Where the forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by ordinal; falls back to the CPU, with a WARN log line, when
    /// the build lacks the `cuda` feature or no GPU answers.
    Cuda(usize),
}

/// A device name that is not `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, thiserror::Error)]
#[error("invalid device {0:?}: expected cpu, cuda or cuda:N")]
pub struct InvalidDevice(pub String);

impl FromStr for DeviceChoice {
    type Err = InvalidDevice;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let name = value.trim().to_ascii_lowercase();
        if name == "cpu" {
            return Ok(Self::Cpu);
        }
        if name == "cuda" {
            return Ok(Self::Cuda(0));
        }
        match name.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => Ok(Self::Cuda(ordinal)),
            _ => Err(InvalidDevice(value.to_owned())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

/// Whether a text is a customer's message or a stored document: models such
/// as e5 expect a different prefix for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Query,
    Passage,
}

/// Everything needed to load and run an encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    /// A folder with `config.json`, `model.safetensors` and `tokenizer.json`.
    pub model: PathBuf,
    /// `None`: read `1_Pooling/config.json` when the folder has one, else mean.
    pub pooling: Option<Pooling>,
    /// Prepended to every [`TextKind::Query`] text, e.g. `"query: "` for e5.
    pub query_prefix: String,
    /// Prepended to every [`TextKind::Passage`] text, e.g. `"passage: "` for e5.
    pub passage_prefix: String,
    /// Scale every sentence vector to unit length, so a dot product is a cosine.
    pub normalize: bool,
    pub device: DeviceChoice,
    /// Tokens kept of a text, special tokens included; the rest is cut.
    /// `None`: the `max_seq_length` of the folder's
    /// `sentence_bert_config.json`, as sentence-transformers cuts, else 256,
    /// either within the model's limit.
    pub max_tokens: Option<usize>,
    /// The most texts in one forward pass.
    pub max_batch: usize,
    /// How long the batcher waits for more requests after the first one.
    pub max_wait: Duration,
}

impl EncoderConfig {
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            pooling: None,
            query_prefix: String::new(),
            passage_prefix: String::new(),
            normalize: true,
            device: DeviceChoice::Cpu,
            max_tokens: None,
            max_batch: 32,
            max_wait: Duration::from_millis(2),
        }
    }

    /// The prefix prepended to texts of `kind`.
    pub fn prefix(&self, kind: TextKind) -> &str {
        match kind {
            TextKind::Query => &self.query_prefix,
            TextKind::Passage => &self.passage_prefix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_names() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("CUDA".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(3));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert!("tpu".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn device_display_round_trips() {
        for device in [DeviceChoice::Cpu, DeviceChoice::Cuda(0), DeviceChoice::Cuda(7)] {
            assert_eq!(device.to_string().parse::<DeviceChoice>().unwrap(), device);
        }
    }

    #[test]
    fn pooling_serde_is_lowercase() {
        assert_eq!(serde_json::to_string(&Pooling::Cls).unwrap(), "\"cls\"");
        assert_eq!(serde_json::from_str::<Pooling>("\"mean\"").unwrap(), Pooling::Mean);
    }
}
