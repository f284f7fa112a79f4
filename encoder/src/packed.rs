//! A BERT / XLM-RoBERTa / MPNet forward pass for the CPU over packed tokens: the
//! texts of a batch are laid end to end with no padding, every dense layer
//! runs as one matrix product over all tokens, and attention runs within
//! each text. Its output matches candle-transformers' padded forward pass
//! (cosine above 0.99999 in the tests).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::folder::Architecture;
use crate::kernels::{Activation, BiasActivation, PackedAttention, ResidualNorm, RELATIVE_BUCKETS};

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, hidden: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self {
            gamma: vb.get(hidden, "weight")?.to_vec1()?,
            beta: vb.get(hidden, "bias")?.to_vec1()?,
            eps: eps as f32,
        })
    }

    fn op<'a>(&'a self, bias: Option<&'a [f32]>) -> ResidualNorm<'a> {
        ResidualNorm { bias, gamma: &self.gamma, beta: &self.beta, eps: self.eps }
    }
}

/// A weight matrix kept transposed, `[in, out]`, for `x @ w`.
struct Dense {
    weight: Tensor,
    bias: Vec<f32>,
}

impl Dense {
    fn load(vb: &VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        Ok(Self {
            weight: vb.get((outputs, inputs), "weight")?.t()?.contiguous()?,
            bias: vb.get(outputs, "bias")?.to_vec1()?,
        })
    }
}

struct Layer {
    /// Query, key and value projections in one `[hidden, 3 * hidden]` matrix.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    output_norm: Norm,
}

/// The naming scheme of a layer's tensors in the weights file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Naming {
    /// `attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`.
    Bert,
    /// `attention.attn.{q,k,v,o}`, `attention.LayerNorm`.
    MpNet,
}

impl Naming {
    /// Returns the names of the query, key, value and output projections and
    /// of the attention's norm.
    pub fn attention(self) -> [&'static str; 5] {
        match self {
            Self::Bert => [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
            ],
            Self::MpNet => {
                ["attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm"]
            }
        }
    }
}

impl Layer {
    fn load(vb: VarBuilder, shape: &Shape) -> candle_core::Result<Self> {
        let (hidden, intermediate, eps) = (shape.hidden, shape.intermediate, shape.eps);
        let [query, key, value, output, norm] = shape.naming.attention();
        let projections = [query, key, value].map(|name| Dense::load(&vb.pp(name), hidden, hidden));
        let [query, key, value] = projections;
        let (query, key, value) = (query?, key?, value?);
        let qkv = Dense {
            weight: Tensor::cat(&[&query.weight, &key.weight, &value.weight], 1)?.contiguous()?,
            bias: [query.bias, key.bias, value.bias].concat(),
        };

        Ok(Self {
            qkv,
            attention_out: Dense::load(&vb.pp(output), hidden, hidden)?,
            attention_norm: Norm::load(&vb.pp(norm), hidden, eps)?,
            up: Dense::load(&vb.pp("intermediate").pp("dense"), hidden, intermediate)?,
            down: Dense::load(&vb.pp("output").pp("dense"), intermediate, hidden)?,
            output_norm: Norm::load(&vb.pp("output").pp("LayerNorm"), hidden, eps)?,
        })
    }

    fn forward(&self, x: &Tensor, lengths: &[usize], model: &PackedEncoder) -> candle_core::Result<Tensor> {
        let qkv = x.matmul(&self.qkv.weight)?;
        let attention =
            PackedAttention { lengths, bias: &self.qkv.bias, heads: model.heads, relative: model.relative.as_deref() };
        let context = qkv.apply_op1_no_bwd(&attention)?;
        let attended = context.matmul(&self.attention_out.weight)?;
        let x = attended.apply_op2_no_bwd(x, &self.attention_norm.op(Some(&self.attention_out.bias)))?;

        let up = x.matmul(&self.up.weight)?;
        let up = up.apply_op1_no_bwd(&BiasActivation { bias: &self.up.bias, activation: model.activation })?;
        let down = up.matmul(&self.down.weight)?;
        down.apply_op2_no_bwd(&x, &self.output_norm.op(Some(&self.down.bias)))
    }
}

/// The packed forward pass's weights.
pub(crate) struct PackedEncoder {
    words: Tensor,
    positions: Tensor,
    /// None for MPNet, which has no token types.
    token_types: Option<Tensor>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    /// MPNet's relative position bias, `[RELATIVE_BUCKETS, heads]`.
    relative: Option<Vec<f32>>,
    activation: Activation,
    /// Position id of a text's first token: 0 for BERT, `pad_token_id + 1`
    /// for XLM-RoBERTa and MPNet, whose position ids skip the padding index.
    first_position: u32,
    device: Device,
}

/// The architecture's shape, read from either configuration type.
pub(crate) struct Shape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub vocab: usize,
    pub max_positions: usize,
    /// 0 for MPNet, which has no token type embeddings.
    pub token_types: usize,
    pub eps: f64,
    pub activation: Activation,
    pub first_position: u32,
    pub prefix: &'static str,
    pub naming: Naming,
    /// Whether the attention adds MPNet's relative position bias.
    pub relative: bool,
}

fn activation(act: candle_nn::Activation) -> Result<Activation, String> {
    match act {
        candle_nn::Activation::Gelu => Ok(Activation::GeluErf),
        candle_nn::Activation::NewGelu | candle_nn::Activation::GeluPytorchTanh => Ok(Activation::GeluTanh),
        candle_nn::Activation::Relu => Ok(Activation::Relu),
        other => Err(format!("unsupported hidden_act {other:?}")),
    }
}

impl Shape {
    /// Reads the shape; `Err` names an activation this crate does not implement.
    pub fn of(architecture: &Architecture) -> Result<Self, String> {
        use candle_transformers::models::bert::HiddenAct;

        match architecture {
            Architecture::Bert(c) => Ok(Self {
                hidden: c.hidden_size,
                intermediate: c.intermediate_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                vocab: c.vocab_size,
                max_positions: c.max_position_embeddings,
                token_types: c.type_vocab_size,
                eps: c.layer_norm_eps,
                activation: match c.hidden_act {
                    HiddenAct::Gelu => Activation::GeluErf,
                    HiddenAct::GeluApproximate => Activation::GeluTanh,
                    HiddenAct::Relu => Activation::Relu,
                },
                first_position: architecture.first_position(),
                prefix: "bert",
                naming: Naming::Bert,
                relative: false,
            }),
            Architecture::XlmRoberta(c) => Ok(Self {
                hidden: c.hidden_size,
                intermediate: c.intermediate_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                vocab: c.vocab_size,
                max_positions: c.max_position_embeddings,
                token_types: c.type_vocab_size,
                eps: c.layer_norm_eps,
                activation: activation(c.hidden_act)?,
                first_position: architecture.first_position(),
                prefix: "roberta",
                naming: Naming::Bert,
                relative: false,
            }),
            Architecture::MpNet(c) => Ok(Self {
                hidden: c.hidden_size,
                intermediate: c.intermediate_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                vocab: c.vocab_size,
                max_positions: c.max_position_embeddings,
                token_types: 0,
                eps: c.layer_norm_eps,
                activation: activation(c.hidden_act)?,
                first_position: architecture.first_position(),
                prefix: "mpnet",
                naming: Naming::MpNet,
                relative: true,
            }),
        }
    }
}

impl PackedEncoder {
    /// Loads the weights; `Ok(None)` when the architecture uses something
    /// this pass does not implement, so the caller uses the padded one.
    pub fn load(architecture: &Architecture, vb: VarBuilder) -> candle_core::Result<Option<Self>> {
        let Ok(shape) = Shape::of(architecture) else {
            return Ok(None);
        };
        let vb = if vb.contains_tensor(&format!("{}.embeddings.word_embeddings.weight", shape.prefix)) {
            vb.pp(shape.prefix)
        } else {
            vb
        };

        let embeddings = vb.pp("embeddings");
        let layers = (0..shape.layers)
            .map(|index| Layer::load(vb.pp("encoder.layer").pp(index), &shape))
            .collect::<candle_core::Result<_>>()?;
        let token_types = match shape.token_types {
            0 => None,
            count => Some(embeddings.get((count, shape.hidden), "token_type_embeddings.weight")?),
        };
        let relative = match shape.relative {
            true => Some(
                vb.get((RELATIVE_BUCKETS, shape.heads), "encoder.relative_attention_bias.weight")?
                    .flatten_all()?
                    .to_vec1()?,
            ),
            false => None,
        };
        Ok(Some(Self {
            words: embeddings.get((shape.vocab, shape.hidden), "word_embeddings.weight")?,
            positions: embeddings.get((shape.max_positions, shape.hidden), "position_embeddings.weight")?,
            token_types,
            embedding_norm: Norm::load(&embeddings.pp("LayerNorm"), shape.hidden, shape.eps)?,
            layers,
            heads: shape.heads,
            relative,
            activation: shape.activation,
            first_position: shape.first_position,
            device: vb.device().clone(),
        }))
    }

    /// Returns the position id of every token. XLM-RoBERTa and MPNet give a
    /// padding token (which a text may contain literally, as `<pad>`) the
    /// padding index and do not count it, as transformers'
    /// `create_position_ids_from_input_ids` does.
    fn positions(&self, ids: &[u32], lengths: &[usize]) -> Vec<u32> {
        let pad = self.first_position.checked_sub(1);
        let mut positions = Vec::with_capacity(ids.len());
        let mut start = 0;
        for &length in lengths {
            let mut next = self.first_position;
            for &id in &ids[start..start + length] {
                if Some(id) == pad {
                    positions.push(id);
                } else {
                    positions.push(next);
                    next += 1;
                }
            }
            start += length;
        }
        positions
    }

    /// Token vectors `[tokens, hidden]` for texts laid end to end; `lengths`
    /// gives each text's token count.
    pub fn forward(&self, ids: Vec<u32>, type_ids: Vec<u32>, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let positions = self.positions(&ids, lengths);
        let tokens = ids.len();
        let ids = Tensor::from_vec(ids, tokens, &self.device)?;
        let positions = Tensor::from_vec(positions, tokens, &self.device)?;

        // Summed in the order of the reference implementations.
        let mut embedded = self.words.index_select(&ids, 0)?;
        if let Some(token_types) = &self.token_types {
            let type_ids = Tensor::from_vec(type_ids, tokens, &self.device)?;
            embedded = (embedded + token_types.index_select(&type_ids, 0)?)?;
        }
        let embedded = (embedded + self.positions.index_select(&positions, 0)?)?;
        let mut x = embedded.apply_op1_no_bwd(&self.embedding_norm.op(None))?;

        for layer in &self.layers {
            x = layer.forward(&x, lengths, self)?;
        }
        debug_assert_eq!(x.dtype(), DType::F32);
        Ok(x)
    }
}
