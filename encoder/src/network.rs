//! The padded transformer forward pass of candle-transformers (our own for
//! MPNet), for each supported architecture; used on GPUs and as the reference on the CPU.

use candle_core::Tensor;
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, xlm_roberta};

use crate::folder::Architecture;
use crate::mpnet::MpNetModel;

/// A loaded transformer that turns token ids into token vectors.
pub(crate) enum Network {
    Bert(bert::BertModel),
    XlmRoberta(xlm_roberta::XLMRobertaModel),
    MpNet(MpNetModel),
}

impl Network {
    /// Builds the network from memory-mapped safetensors weights, which may or
    /// may not carry the `bert.` / `roberta.` prefix of a task model.
    pub fn load(architecture: &Architecture, vb: VarBuilder) -> candle_core::Result<Self> {
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
            Architecture::MpNet(config) => MpNetModel::load(config, vb).map(Self::MpNet),
        }
    }

    /// Token vectors `[batch, tokens, hidden]` for `ids`, `type_ids` and
    /// `mask`, each `[batch, tokens]` of `u32`.
    pub fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Bert(model) => model.forward(ids, type_ids, Some(mask)),
            Self::XlmRoberta(model) => model.forward(ids, mask, type_ids, None, None, None),
            Self::MpNet(model) => model.forward(ids, mask),
        }
    }
}
