//! The f32 attention forward on CUDA cores (kernels/attention_f32.cu), behind
//! [`attention_into`](crate::attention_into) and
//! [`attention_varlen_into`](crate::attention_varlen_into) when `T = f32`: the same
//! parameters ([`AttnParams`]) and semantics as the f16 / bf16 tensor-core kernel, exact f32
//! FMAs, 32 query rows per block of 128 threads (a quad per row).

use crate::device::{BufferView, BufferViewMut, Device};
use crate::error::Result;
use crate::kernels::attention::AttnParams;
use crate::kernels::constants::attention_f32 as c;
use crate::kernels::launch::LaunchConfig;

declare_kernels! {
    /// C: `attention_fwd_f32_d32(q, k, v, o, lse, cu_seqlens_q, cu_seqlens_k, key_lengths, p)`
    fn attention_fwd_f32_d32(q: input f32, k: input f32, v: input f32, o: output f32, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 64.
    fn attention_fwd_f32_d64(q: input f32, k: input f32, v: input f32, o: output f32, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 72 (DiT-XL/2): 8-byte vector chunks, 18 dims per lane.
    fn attention_fwd_f32_d72(q: input f32, k: input f32, v: input f32, o: output f32, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 96.
    fn attention_fwd_f32_d96(q: input f32, k: input f32, v: input f32, o: output f32, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
    /// Head dim 128.
    fn attention_fwd_f32_d128(q: input f32, k: input f32, v: input f32, o: output f32, lse: output f32,
        cu_seqlens_q: input u32, cu_seqlens_k: input u32, key_lengths: input u32, p: scalar AttnParams);
}

/// Query rows per block (the grid's x extent is `⌈max Tq / BLOCK_M⌉`).
pub(crate) const BLOCK_M: usize = c::ATTN32_BLOCK_M as usize;

/// Shared memory of the kernel for `head_dim` (attention_f32.cu, Attn32Tile::SMEM_BYTES): two
/// stages of an unpadded K and V tile of BN rows of f32.
fn smem_bytes(head_dim: usize) -> u32 {
    let bn =
        if head_dim <= c::ATTN32_NARROW_MAX_DIM as usize { c::ATTN32_BLOCK_N_NARROW } else { c::ATTN32_BLOCK_N_WIDE }
            as usize;
    (2 * 2 * bn * head_dim * 4) as u32
}

/// Launches the kernel of `head_dim` (one of the checked head dims) on `grid`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch<'a>(
    device: &Device,
    grid: (u32, u32, u32),
    head_dim: usize,
    q: BufferView<'a, f32>,
    k: BufferView<'a, f32>,
    v: BufferView<'a, f32>,
    out: BufferViewMut<'a, f32>,
    lse: BufferViewMut<'a, f32>,
    words: (BufferView<'a, u32>, BufferView<'a, u32>, BufferView<'a, u32>),
    p: AttnParams,
) -> Result<()> {
    let cfg = LaunchConfig { grid, block: (c::ATTN32_THREADS, 1, 1), shared_mem_bytes: smem_bytes(head_dim) };
    let (wq, wk, wl) = words;
    match head_dim {
        32 => attention_fwd_f32_d32(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        64 => attention_fwd_f32_d64(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        72 => attention_fwd_f32_d72(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        96 => attention_fwd_f32_d96(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
        _ => attention_fwd_f32_d128(device, &cfg, q, k, v, out, lse, wq, wk, wl, p),
    }
}
