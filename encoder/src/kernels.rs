//! CPU kernels for the packed forward pass, written as candle custom ops so
//! that each runs once over all tokens of a batch: bias plus activation, bias
//! plus residual plus layer norm, and attention within each sequence.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use rayon::prelude::*;

/// Rows handed to one rayon task; small enough to split a batch-1 pass over
/// two cores, large enough to keep the scheduling cost negligible.
const ROWS_PER_TASK: usize = 8;

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input is not contiguous"),
    }
}

/// The feed-forward activation of a BERT-family model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// GELU with the exact error function (`gelu` in Hugging Face configs).
    GeluErf,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

/// `activation(x + bias)` over rows of `bias.len()` values.
pub(crate) struct BiasActivation<'a> {
    pub bias: &'a [f32],
    pub activation: Activation,
}

impl CustomOp1 for BiasActivation<'_> {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout, self.name())?;
        let width = self.bias.len();
        let mut output = vec![0f32; input.len()];

        output
            .par_chunks_mut(width * ROWS_PER_TASK)
            .zip(input.par_chunks(width * ROWS_PER_TASK))
            .for_each(|(out_rows, in_rows)| {
                for (out_row, in_row) in out_rows.chunks_mut(width).zip(in_rows.chunks(width)) {
                    match self.activation {
                        Activation::GeluErf => gelu_erf_row(out_row, in_row, self.bias),
                        Activation::GeluTanh => gelu_tanh_row(out_row, in_row, self.bias),
                        Activation::Relu => {
                            for ((out, &x), &b) in out_row.iter_mut().zip(in_row).zip(self.bias) {
                                *out = (x + b).max(0.0);
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(output), layout.shape().clone()))
    }
}

fn gelu_erf_row(out: &mut [f32], input: &[f32], bias: &[f32]) {
    for ((out, &x), &b) in out.iter_mut().zip(input).zip(bias) {
        let x = x + b;
        *out = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn gelu_tanh_row(out: &mut [f32], input: &[f32], bias: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for ((out, &x), &b) in out.iter_mut().zip(input).zip(bias) {
        let x = x + b;
        let inner = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
        // tanh(u) = 1 - 2 / (exp(2u) + 1), with the branch-free exp below.
        let tanh = 1.0 - 2.0 / (exp(2.0 * inner.clamp(-15.0, 15.0)) + 1.0);
        *out = 0.5 * x * (1.0 + tanh);
    }
}

/// The error function, by Abramowitz and Stegun formula 7.1.26 (absolute
/// error below 1.5e-7, under f32 rounding at GELU's scale). Branch-free so
/// the compiler vectorises the loops above.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let sign = 1f32.copysign(x);
    let x = x.abs();
    let t = 1.0 / (1.0 + P * x);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    sign * (1.0 - poly * exp(-x * x))
}

/// `e^x` for x in about [-87, 87] with relative error near 2e-7: Cody-Waite
/// reduction to `2^n * e^r` with |r| <= ln2/2 and a degree-6 polynomial.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 87.0);
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer
    // without a call to roundf, which would stop vectorisation.
    const ROUNDER: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUNDER) - ROUNDER;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let poly = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    poly * scale
}

/// `layer_norm(x + bias + residual)` over rows of `bias.len()` values; the
/// residual is optional for the embedding layer's norm.
pub(crate) struct ResidualNorm<'a> {
    pub bias: Option<&'a [f32]>,
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

impl ResidualNorm<'_> {
    fn run(&self, input: &[f32], residual: Option<&[f32]>) -> Vec<f32> {
        let width = self.gamma.len();
        let mut output = vec![0f32; input.len()];
        output.par_chunks_mut(width * ROWS_PER_TASK).enumerate().for_each(|(task, out_rows)| {
            let first = task * ROWS_PER_TASK * width;
            for (row, out) in out_rows.chunks_mut(width).enumerate() {
                let start = first + row * width;
                out.copy_from_slice(&input[start..start + width]);
                if let Some(residual) = residual {
                    add(out, &residual[start..start + width]);
                }
                if let Some(bias) = self.bias {
                    add(out, bias);
                }
                self.normalise(out);
            }
        });
        output
    }

    fn normalise(&self, row: &mut [f32]) {
        let width = row.len() as f32;
        let mean = row.iter().sum::<f32>() / width;
        let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / width;
        let scale = 1.0 / (variance + self.eps).sqrt();
        for ((x, &g), &b) in row.iter_mut().zip(self.gamma).zip(self.beta) {
            *x = (*x - mean) * scale * g + b;
        }
    }
}

fn add(row: &mut [f32], other: &[f32]) {
    for (x, &y) in row.iter_mut().zip(other) {
        *x += y;
    }
}

impl CustomOp1 for ResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout, CustomOp1::name(self))?;
        Ok((CpuStorage::F32(self.run(input, None)), layout.shape().clone()))
    }
}

impl CustomOp2 for ResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(s1, l1, CustomOp2::name(self))?;
        let residual = contiguous(s2, l2, CustomOp2::name(self))?;
        if input.len() != residual.len() {
            candle_core::bail!("residual-layer-norm: shapes {:?} and {:?} differ", l1.shape(), l2.shape());
        }
        Ok((CpuStorage::F32(self.run(input, Some(residual))), l1.shape().clone()))
    }
}

/// Multi-head self-attention over packed tokens: the input is `[tokens,
/// 3 * hidden]` (query, key and value projections without their bias),
/// `lengths` splits the tokens into sequences, and each token attends only
/// within its own sequence, so no padding or mask is needed.
pub(crate) struct PackedAttention<'a> {
    pub lengths: &'a [usize],
    pub bias: &'a [f32],
    pub heads: usize,
    /// MPNet's relative position bias, `[RELATIVE_BUCKETS, heads]`, added to
    /// the scores of a query and a key by the bucket of their distance.
    pub relative: Option<&'a [f32]>,
}

/// The number of relative position buckets of MPNet's attention.
pub(crate) const RELATIVE_BUCKETS: usize = 32;
/// Distances from this one up share MPNet's last bucket of each direction.
const RELATIVE_MAX_DISTANCE: i64 = 128;

/// Returns the bucket of the distance `key - query` in MPNet's relative
/// position bias, as Hugging Face transformers computes it: half the buckets
/// for each direction, exact buckets for distances below 8 and logarithmic
/// ones up to 128. The arithmetic runs in `f32` like the reference's, so that
/// boundary cases round the same way.
pub(crate) fn relative_bucket(key_minus_query: i64) -> usize {
    let half = (RELATIVE_BUCKETS / 2) as i64;
    let n = -key_minus_query;
    let base = if n < 0 { half } else { 0 };
    let n = n.abs();
    let exact = half / 2;
    if n < exact {
        return (base + n) as usize;
    }
    let ratio = (RELATIVE_MAX_DISTANCE as f64 / exact as f64).ln() as f32;
    let large = exact + ((n as f32 / exact as f32).ln() / ratio * (half - exact) as f32) as i64;
    (base + large.min(half - 1)) as usize
}

impl PackedAttention<'_> {
    /// One sequence's attention output, `[length, hidden]`.
    fn sequence(&self, qkv: &[f32], length: usize) -> Vec<f32> {
        let hidden = self.bias.len() / 3;
        let head_size = hidden / self.heads;
        let scale = 1.0 / (head_size as f32).sqrt();

        let mut projected = qkv.to_vec();
        for row in projected.chunks_mut(3 * hidden) {
            add(row, self.bias);
        }

        // The relative bias of every distance -(length - 1)..length, by head.
        let relative: Vec<f32> = match self.relative {
            Some(table) => (0..2 * length.max(1) - 1)
                .flat_map(|offset| {
                    let bucket = relative_bucket(offset as i64 - (length as i64 - 1));
                    table[bucket * self.heads..(bucket + 1) * self.heads].to_vec()
                })
                .collect(),
            None => Vec::new(),
        };

        let mut output = vec![0f32; length * hidden];
        let mut scores = vec![0f32; length];
        for head in 0..self.heads {
            let columns = head * head_size..(head + 1) * head_size;
            for i in 0..length {
                let query = &projected[i * 3 * hidden..][columns.clone()];
                let mut max = f32::NEG_INFINITY;
                for (j, score) in scores.iter_mut().enumerate() {
                    let key = &projected[j * 3 * hidden + hidden..][columns.clone()];
                    *score = dot(query, key) * scale;
                    if !relative.is_empty() {
                        *score += relative[(j + length - 1 - i) * self.heads + head];
                    }
                    max = max.max(*score);
                }
                let mut total = 0.0;
                for score in scores.iter_mut() {
                    *score = (*score - max).exp();
                    total += *score;
                }

                let out = &mut output[i * hidden..][columns.clone()];
                for (j, &score) in scores.iter().enumerate() {
                    let value = &projected[j * 3 * hidden + 2 * hidden..][columns.clone()];
                    let weight = score / total;
                    for (o, &v) in out.iter_mut().zip(value) {
                        *o += weight * v;
                    }
                }
            }
        }
        output
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl CustomOp1 for PackedAttention<'_> {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, self.name())?;
        let width = self.bias.len();
        let hidden = width / 3;
        let tokens: usize = self.lengths.iter().sum();
        if qkv.len() != tokens * width {
            candle_core::bail!("packed-attention: {} values for {tokens} tokens of width {width}", qkv.len());
        }

        let mut starts = Vec::with_capacity(self.lengths.len());
        let mut start = 0;
        for &length in self.lengths {
            starts.push(start);
            start += length;
        }
        let parts: Vec<Vec<f32>> = self
            .lengths
            .par_iter()
            .zip(&starts)
            .map(|(&length, &start)| self.sequence(&qkv[start * width..(start + length) * width], length))
            .collect();

        Ok((CpuStorage::F32(parts.concat()), Shape::from((tokens, hidden))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_buckets_match_transformers() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-mpnet/reference.json");
        let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pairs = reference["buckets"].as_array().unwrap();
        assert!(pairs.len() > 100);
        for pair in pairs {
            let (distance, bucket) = (pair[0].as_i64().unwrap(), pair[1].as_u64().unwrap() as usize);
            assert_eq!(relative_bucket(distance), bucket, "distance {distance}");
        }
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf values from the standard tables.
        for (x, expected) in [(0.0, 0.0), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.5, 0.999_999_3)] {
            assert!((erf(x) - expected).abs() < 3e-7, "erf({x}) = {} not {expected}", erf(x));
        }
    }

    #[test]
    fn exp_matches_std() {
        for i in -800..800 {
            let x = i as f32 / 10.0;
            let relative = (exp(x) - x.exp()).abs() / x.exp();
            assert!(relative < 1e-6, "exp({x}): relative error {relative}");
        }
    }
}
