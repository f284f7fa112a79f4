//! The transformer forward pass of each supported architecture.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, xlm_roberta};

use crate::folder::Architecture;

/// A loaded transformer that turns token ids into token vectors.
pub(crate) enum Network {
    Bert(bert::BertModel),
    XlmRoberta(xlm_roberta::XLMRobertaModel),
}

impl Network {
    /// Builds the network from memory-mapped safetensors weights, which may or
    /// may not carry the `bert.` / `roberta.` prefix of a task model.
    pub fn load(architecture: &Architecture, weights: &std::path::Path, device: &Device) -> candle_core::Result<Self> {
        // SAFETY: the weights file is mapped read-only; changing it while the
        // process runs is undefined behaviour, as for every mmap-based loader.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device)? };

        match architecture {
            Architecture::Bert(config) => bert::BertModel::load(vb, config).map(Self::Bert),
            Architecture::XlmRoberta(config) => {
                let vb = if vb.contains_tensor("roberta.embeddings.word_embeddings.weight") {
                    vb.pp("roberta")
                } else {
                    vb
                };
                xlm_roberta::XLMRobertaModel::new(config, vb).map(Self::XlmRoberta)
            }
        }
    }

    /// Token vectors `[batch, tokens, hidden]` for `ids`, `type_ids` and
    /// `mask`, each `[batch, tokens]` of `u32`.
    pub fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(model) => model.forward(ids, type_ids, Some(mask)),
            Self::XlmRoberta(model) => model.forward(ids, mask, type_ids, None, None, None),
        }
    }
}
