//! The intent-classification boundary.

use serde::{Deserialize, Serialize};

use crate::ids::IntentId;

/// Classifies a customer's message into the bot's intents.
pub trait Classifier: Send + Sync {
    /// Ranks every intent for `text`, highest confidence first; confidences sum to at most 1.
    fn classify(&self, text: &str) -> Classification;

    /// The same ranking for a caller on an async runtime. The engine calls this
    /// one; a classifier that waits for a shared model (a batch of an encoder's
    /// requests, say) overrides it so that the wait does not hold a runtime
    /// thread. The default runs [`Classifier::classify`] in place.
    fn classify_async<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Classification> {
        Box::pin(std::future::ready(self.classify(text)))
    }

    /// Checks whether the classifier can classify now, for readiness probes.
    /// Implementations must not classify here, so that the check does not wait
    /// behind other conversations.
    /// The default returns `Ok`, because a classifier that runs in place has
    /// nothing to wait for. One on a shared model fails when that model has stalled.
    fn check_ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A boxed, sendable future, as the async methods of the engine's boundaries return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

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
