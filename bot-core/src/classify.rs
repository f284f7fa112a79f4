//! The intent-classification boundary.

use serde::{Deserialize, Serialize};

use crate::ids::IntentId;

/// Classifies a customer's message into the bot's intents.
pub trait Classifier: Send + Sync {
    /// Ranks every intent for `text`, highest confidence first; confidences sum to at most 1.
    fn classify(&self, text: &str) -> Classification;
}

/// Intents ranked by confidence, highest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub ranking: Vec<ScoredIntent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredIntent {
    pub intent: IntentId,
    pub confidence: f32,
}

impl Classification {
    pub fn top(&self) -> Option<&ScoredIntent> {
        self.ranking.first()
    }

    /// Returns the top intent when its confidence reaches `threshold` and leads
    /// the second by at least `margin`; `None` means out of scope.
    pub fn decide(&self, threshold: f32, margin: f32) -> Option<&ScoredIntent> {
        let top = self.ranking.first()?;
        let second = self.ranking.get(1).map_or(0.0, |s| s.confidence);
        let confident = top.confidence >= threshold && top.confidence - second >= margin;
        confident.then_some(top)
    }
}

/// A classifier for a bot with no intents; everything is out of scope.
pub struct NoIntents;

impl Classifier for NoIntents {
    fn classify(&self, _text: &str) -> Classification {
        Classification::default()
    }
}
