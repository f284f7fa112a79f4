//! AdamW for the rows of the sparse first layer.
//!
//! candle-nn's `AdamW` updates every element of a `Var` on every step, which
//! for a table of tens of thousands of rows costs far more than the rest of a
//! step, although a batch touches only a few thousand rows. This optimiser
//! applies the same update as candle-nn's `AdamW` (decoupled weight decay,
//! bias-corrected moments, the global step count) to the touched rows only, as
//! TensorFlow Addons' `LazyAdam` does: an untouched row keeps its moments and
//! skips its weight decay.

/// Moments for every row of a `rows × width` table.
pub(crate) struct RowAdamW {
    width: usize,
    first_moment: Vec<f32>,
    second_moment: Vec<f32>,
    params: RowAdamWParams,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RowAdamWParams {
    pub(crate) beta1: f32,
    pub(crate) beta2: f32,
    pub(crate) eps: f32,
    pub(crate) weight_decay: f32,
}

impl RowAdamW {
    pub(crate) fn new(rows: usize, width: usize, params: RowAdamWParams) -> Self {
        Self { width, first_moment: vec![0.0; rows * width], second_moment: vec![0.0; rows * width], params }
    }

    /// Updates `table` rows `rows[i]` with gradient row `i` of `gradient`
    /// (`rows.len() × width`), at step `step` (counted from 1) and learning rate `lr`.
    pub(crate) fn step(&mut self, table: &mut [f32], rows: &[u32], gradient: &[f32], step: usize, lr: f32) {
        let RowAdamWParams { beta1, beta2, eps, weight_decay } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(step as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(step as i32));
        let decay = 1.0 - lr * weight_decay;

        for (&row, grad_row) in rows.iter().zip(gradient.chunks_exact(self.width)) {
            let range = row as usize * self.width..(row as usize + 1) * self.width;
            let theta = &mut table[range.clone()];
            let m = &mut self.first_moment[range.clone()];
            let v = &mut self.second_moment[range];

            for i in 0..self.width {
                let g = grad_row[i];
                m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                let update = (m[i] * scale_m) / ((v[i] * scale_v).sqrt() + eps);
                theta[i] = theta[i] * decay - lr * update;
            }
        }
    }
}
