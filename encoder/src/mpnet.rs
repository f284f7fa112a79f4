//! MPNet's padded forward pass in candle operations, for GPUs and as the
//! reference of the packed pass (candle-transformers has no MPNet). It
//! follows Hugging Face transformers' `MPNetModel`: BERT's layers without
//! token types, and a relative position bias added to every layer's
//! attention scores.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use crate::folder::MpNetConfig;
use crate::kernels::{relative_bucket, RELATIVE_BUCKETS};

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    up: Linear,
    down: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(config: &MpNetConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (hidden, eps) = (config.hidden_size, config.layer_norm_eps);
        let attention = vb.pp("attention");
        Ok(Self {
            query: linear(hidden, hidden, attention.pp("attn.q"))?,
            key: linear(hidden, hidden, attention.pp("attn.k"))?,
            value: linear(hidden, hidden, attention.pp("attn.v"))?,
            attention_out: linear(hidden, hidden, attention.pp("attn.o"))?,
            attention_norm: layer_norm(hidden, eps, attention.pp("LayerNorm"))?,
            up: linear(hidden, config.intermediate_size, vb.pp("intermediate.dense"))?,
            down: linear(config.intermediate_size, hidden, vb.pp("output.dense"))?,
            output_norm: layer_norm(hidden, eps, vb.pp("output.LayerNorm"))?,
        })
    }

    /// Runs the layer on `x`, `[batch, tokens, hidden]`. `bias` is the position
    /// bias plus the padding mask, `[batch, heads, tokens, tokens]`.
    fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        heads: usize,
        act: candle_nn::Activation,
    ) -> candle_core::Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let head_size = hidden / heads;
        let split = |t: Tensor| t.reshape((batch, tokens, heads, head_size))?.transpose(1, 2)?.contiguous();
        let query = split(self.query.forward(x)?)?;
        let key = split(self.key.forward(x)?)?;
        let value = split(self.value.forward(x)?)?;

        let scores = (query.matmul(&key.t()?)? / (head_size as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&(scores + bias)?)?;
        let context = weights.matmul(&value)?.transpose(1, 2)?.reshape((batch, tokens, hidden))?;
        let x = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;

        let up = act.forward(&self.up.forward(&x)?)?;
        self.output_norm.forward(&(self.down.forward(&up)? + x)?)
    }
}

/// A loaded MPNet encoder.
pub(crate) struct MpNetModel {
    words: Embedding,
    positions: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    /// `[RELATIVE_BUCKETS, heads]`.
    relative: Embedding,
    heads: usize,
    pad_id: u32,
    activation: candle_nn::Activation,
    device: Device,
}

impl MpNetModel {
    /// Loads the weights, with or without the `mpnet.` prefix of a task model.
    pub fn load(config: &MpNetConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("mpnet.embeddings.word_embeddings.weight") { vb.pp("mpnet") } else { vb };
        let hidden = config.hidden_size;
        let embeddings = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|index| Layer::load(config, vb.pp("encoder.layer").pp(index)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            words: embedding(config.vocab_size, hidden, embeddings.pp("word_embeddings"))?,
            positions: embedding(config.max_position_embeddings, hidden, embeddings.pp("position_embeddings"))?,
            embedding_norm: layer_norm(hidden, config.layer_norm_eps, embeddings.pp("LayerNorm"))?,
            layers,
            relative: embedding(
                RELATIVE_BUCKETS,
                config.num_attention_heads,
                vb.pp("encoder.relative_attention_bias"),
            )?,
            heads: config.num_attention_heads,
            pad_id: config.pad_token_id,
            activation: config.hidden_act,
            device: vb.device().clone(),
        })
    }

    /// Returns the token vectors `[batch, tokens, hidden]` for `ids` and
    /// `mask`, each `[batch, tokens]` of `u32`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;

        // Position ids count a text's tokens from pad_id + 1 and give padding
        // (and a literal `<pad>` in the text) pad_id, as transformers'
        // create_position_ids_from_input_ids does.
        let positions: Vec<u32> = ids
            .to_vec2::<u32>()?
            .iter()
            .flat_map(|row| {
                row.iter().scan(self.pad_id, |next, &id| {
                    Some(if id == self.pad_id {
                        self.pad_id
                    } else {
                        *next += 1;
                        *next
                    })
                })
            })
            .collect();
        let positions = Tensor::from_vec(positions, (batch, tokens), &self.device)?;
        let embedded = (self.words.forward(ids)? + self.positions.forward(&positions)?)?;
        let mut x = self.embedding_norm.forward(&embedded)?;

        // The bucket of every (query, key) pair, then its bias by head.
        let buckets: Vec<u32> = (0..tokens)
            .flat_map(|query| (0..tokens).map(move |key| relative_bucket(key as i64 - query as i64) as u32))
            .collect();
        let buckets = Tensor::from_vec(buckets, (tokens, tokens), &self.device)?;
        let position_bias = self.relative.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)?;
        // Padding gets a large negative score, as in transformers.
        let padding = ((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?.reshape((batch, 1, 1, tokens))?;
        let bias = position_bias.broadcast_add(&padding)?.contiguous()?;

        for layer in &self.layers {
            x = layer.forward(&x, &bias, self.heads, self.activation)?;
        }
        Ok(x)
    }
}
