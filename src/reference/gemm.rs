//! Linear layers `Y = X·Wᵀ` with the fused epilogues of `kernels/gemm.cu`, in f64.
//!
//! `x [m, k]` and `w [n, k]` row-major (nn.Linear's weight layout), `out [m, n]`. Every
//! product and sum is in f64 and the result is rounded once to the output type.

use crate::element::FloatElement;

/// GELU with the tanh approximation (`F.gelu(x, approximate="tanh")`).
pub fn gelu_tanh(x: f64) -> f64 {
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + inner.tanh())
}

/// SiLU (`F.silu`): `x·σ(x)`.
pub fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// What follows the product, elementwise on `acc = (X·Wᵀ)[r, c]`.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a, T> {
    /// `out = acc`.
    None,
    /// `out = acc + bias[c]`.
    Bias(&'a [T]),
    /// `out = gelu_tanh(acc + bias[c])`.
    BiasGelu(&'a [T]),
    /// `out = silu(acc + bias[c])`.
    BiasSilu(&'a [T]),
    /// `out = out + gate[b·gate_stride + c] · (acc + bias[c])`, `b = r / tokens_per_sample`
    /// (adaLN-Zero's gated residual; `out` holds the residual on entry).
    Gated {
        /// `[n]`.
        bias: &'a [T],
        /// One row of n gates per sample, rows `gate_stride` elements apart.
        gate: &'a [T],
        /// Elements between consecutive samples' gate rows.
        gate_stride: usize,
        /// Rows of x per sample.
        tokens_per_sample: usize,
    },
}

impl<T: FloatElement> Epilogue<'_, T> {
    /// The epilogue's value for `acc` at (row, col), given the residual there.
    pub fn apply(&self, acc: f64, row: usize, col: usize, residual: f64) -> f64 {
        let b = |bias: &[T]| bias[col].to_f32() as f64;
        match *self {
            Epilogue::None => acc,
            Epilogue::Bias(bias) => acc + b(bias),
            Epilogue::BiasGelu(bias) => gelu_tanh(acc + b(bias)),
            Epilogue::BiasSilu(bias) => silu(acc + b(bias)),
            Epilogue::Gated { bias, gate, gate_stride, tokens_per_sample } => {
                let g = gate[(row / tokens_per_sample) * gate_stride + col].to_f32() as f64;
                residual + g * (acc + b(bias))
            }
        }
    }
}

/// The f64 product `(X·Wᵀ)[r, c]`.
pub fn dot<T: FloatElement>(x: &[T], w: &[T], k: usize, row: usize, col: usize) -> f64 {
    (0..k).map(|i| x[row * k + i].to_f32() as f64 * w[col * k + i].to_f32() as f64).sum()
}

/// `out = epilogue(X·Wᵀ)`; slices must hold `m·k`, `n·k` and `m·n` elements.
pub fn linear<T: FloatElement, O: FloatElement>(
    x: &[T],
    w: &[T],
    m: usize,
    n: usize,
    k: usize,
    epilogue: &Epilogue<'_, T>,
    out: &mut [O],
) {
    for r in 0..m {
        for c in 0..n {
            let residual = out[r * n + c].to_f32() as f64;
            let v = epilogue.apply(dot(x, w, k, r, c), r, c, residual);
            out[r * n + c] = O::from_f32(v as f32);
        }
    }
}
