//! Emulator self-test kernels (`kernels/selftest/*.cu`): one small kernel per CUDA
//! primitive the emulator implements, each written so that a wrong primitive gives a wrong
//! result or a missing error. `tests/emulator.rs` runs them and checks the results against
//! plain Rust computations.
//!
//! Each public function uploads its inputs, launches one self-test kernel through the shared
//! launch path (so it runs on the Emulator and, when present, on a GPU), and returns the
//! downloaded outputs. Hidden from the documentation: this is test support, not API.

use crate::device::{Device, DeviceBuffer, Element};
use crate::error::Result;
use crate::kernels::launch::LaunchConfig;
use half::{bf16, f16};

declare_kernels! {
    /// C: `selftest_block_reduce(const float* in, int n, int chunk, float* out_tree,
    ///     float* out_helper, int* out_count)`
    fn selftest_block_reduce(src: input f32, n: scalar i32, chunk: scalar i32, out_tree: output f32,
        out_helper: output f32, out_count: output i32);
    /// C: `selftest_warp_shuffle(const float* in, float* out, unsigned* out64)`
    fn selftest_warp_shuffle(src: input f32, out: output f32, out64: output u32);
    /// C: `selftest_warp_vote(const int* in, unsigned* out)`
    fn selftest_warp_vote(src: input i32, out: output u32);
    /// C: `selftest_atomic_hist(const unsigned* in, int n, unsigned* hist, int nbins, float* fsum,
    ///     unsigned long long* total, int* vmax, int* vmin, unsigned* cas_count, unsigned* bits)`
    fn selftest_atomic_hist(src: input u32, n: scalar i32, hist: output u32, nbins: scalar i32, fsum: output f32,
        total: output u64, vmax: output i32, vmin: output i32, cas_count: output u32, bits: output u32);
    /// C: `selftest_mma_f16(const __half* A, const __half* B, const float* C, float* D)`
    fn selftest_mma_f16(a: input f16, b: input f16, c: input f32, d: output f32);
    /// C: `selftest_mma_bf16(const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C, float* D)`
    fn selftest_mma_bf16(a: input bf16, b: input bf16, c: input f32, d: output f32);
    /// C: `selftest_ldmatrix(const tessera::f16* src, unsigned* out)` (src: raw 16-bit patterns)
    fn selftest_ldmatrix(src: input f16, out: output u32);
    /// C: `selftest_oob(const float* in, float* out, int n)`
    fn selftest_oob(src: input f32, out: output f32, n: scalar i32);
    /// C: `selftest_deadlock(int* out)`
    fn selftest_deadlock(out: output i32);
    /// C: `selftest_divergent_sync(int* out)`
    fn selftest_divergent_sync(out: output i32);
    /// C: `selftest_shfl_self_not_in_mask(float* out)`
    fn selftest_shfl_self_not_in_mask(out: output f32);
    /// C: `selftest_shfl_source_not_in_mask(float* out)`
    fn selftest_shfl_source_not_in_mask(out: output f32);
    /// C: `selftest_collective_mismatch(float* out)`
    fn selftest_collective_mismatch(out: output f32);
    /// C: `selftest_collective_exited(float* out)`
    fn selftest_collective_exited(out: output f32);
    /// C: `selftest_mask_mismatch(float* out)`
    fn selftest_mask_mismatch(out: output f32);
    /// C: `selftest_partial_warp_full_mask(float* out)`
    fn selftest_partial_warp_full_mask(out: output f32);
    /// C: `selftest_with_barrier(const float* in, float* out)`
    fn selftest_with_barrier(src: input f32, out: output f32);
    /// C: `selftest_without_barrier(const float* in, float* out)`
    fn selftest_without_barrier(src: input f32, out: output f32);
    /// C: `selftest_half_convert(const float* in, int n, unsigned short* h16, unsigned short* hb,
    ///     float* back16, float* backb, unsigned* pair, int* mismatches)` (h16, hb: tessera::f16*, tessera::bf16*)
    fn selftest_half_convert(src: input f32, n: scalar i32, h16: output f16, hb: output bf16, back16: output f32,
        backb: output f32, pair: output u32, mismatches: output i32);
    /// C: `selftest_cp_async(const float* src_floats, float* out, unsigned* out16_words)` (16-byte vectors inside)
    fn selftest_cp_async(src_floats: input f32, out: output f32, out16_words: output u32);
}

/// A buffer of `len` copies of `value`.
fn filled<T: Element>(device: &Device, len: usize, value: T) -> Result<DeviceBuffer<T>> {
    device.upload(&vec![value; len])
}

fn int(v: usize) -> i32 {
    i32::try_from(v).expect("self-test sizes fit in i32")
}

/// Per-block sums of `x` split in chunks of `chunk` elements, blocks of `threads` threads:
/// (shared-memory tree, `tessera::block_reduce_sum`, `__syncthreads_count(partial > 0)`).
pub fn block_reduce(device: &Device, x: &[f32], chunk: usize, threads: u32) -> Result<(Vec<f32>, Vec<f32>, Vec<i32>)> {
    let blocks = x.len().div_ceil(chunk);
    let xb = device.upload(x)?;
    let mut tree = filled(device, blocks, f32::NAN)?;
    let mut helper = filled(device, blocks, f32::NAN)?;
    let mut count = filled(device, blocks, -1i32)?;
    let cfg = LaunchConfig::linear(blocks as u32, threads, 0);
    selftest_block_reduce(device, &cfg, &xb, int(x.len()), int(chunk), &mut tree, &mut helper, &mut count)?;
    Ok((tree.download()?, helper.download()?, count.download()?))
}

/// Sentinel of unwritten self-test outputs.
pub const SENTINEL_F32: f32 = -12345.0;
/// Sentinel of unwritten self-test outputs.
pub const SENTINEL_U32: u32 = 0xdead_beef;

/// Runs `selftest_warp_shuffle` on blocks of 128 threads (`x.len()` must be a multiple of
/// 128): returns (`out`, 8 floats per thread; `out64`, 4 words per thread).
pub fn warp_shuffle(device: &Device, x: &[f32]) -> Result<(Vec<f32>, Vec<u32>)> {
    assert_eq!(x.len() % 128, 0);
    let xb = device.upload(x)?;
    let mut out = filled(device, x.len() * 8, SENTINEL_F32)?;
    let mut out64 = filled(device, x.len() * 4, SENTINEL_U32)?;
    let cfg = LaunchConfig::linear((x.len() / 128) as u32, 128, 0);
    selftest_warp_shuffle(device, &cfg, &xb, &mut out, &mut out64)?;
    Ok((out.download()?, out64.download()?))
}

/// Runs `selftest_warp_vote` on blocks of `threads` threads (a multiple of 32 dividing
/// `x.len()`): 8 words per thread.
pub fn warp_vote(device: &Device, x: &[i32], threads: u32) -> Result<Vec<u32>> {
    assert_eq!(x.len() % threads as usize, 0);
    let xb = device.upload(x)?;
    let mut out = filled(device, x.len() * 8, SENTINEL_U32)?;
    let cfg = LaunchConfig::linear((x.len() / threads as usize) as u32, threads, 0);
    selftest_warp_vote(device, &cfg, &xb, &mut out)?;
    out.download()
}

/// Results of `selftest_atomic_hist`.
#[derive(Debug, PartialEq)]
pub struct AtomicResults {
    pub hist: Vec<u32>,
    pub fsum: f32,
    pub total: u64,
    pub vmax: i32,
    pub vmin: i32,
    pub cas_count: u32,
    pub bits: u32,
}

/// Runs `selftest_atomic_hist` over `x` with `nbins` bins on `blocks` blocks of 256 threads.
pub fn atomic_hist(device: &Device, x: &[u32], nbins: usize, blocks: u32) -> Result<AtomicResults> {
    let xb = device.upload(x)?;
    let mut hist = device.zeros::<u32>(nbins)?;
    let mut fsum = device.zeros::<f32>(1)?;
    let mut total = device.zeros::<u64>(1)?;
    let mut vmax = filled(device, 1, i32::MIN)?;
    let mut vmin = filled(device, 1, i32::MAX)?;
    let mut cas = device.zeros::<u32>(1)?;
    let mut bits = device.zeros::<u32>(1)?;
    let cfg = LaunchConfig::linear(blocks, 256, 0);
    selftest_atomic_hist(
        device,
        &cfg,
        &xb,
        int(x.len()),
        &mut hist,
        int(nbins),
        &mut fsum,
        &mut total,
        &mut vmax,
        &mut vmin,
        &mut cas,
        &mut bits,
    )?;
    let t = total.download()?;
    Ok(AtomicResults {
        hist: hist.download()?,
        fsum: fsum.download()?[0],
        total: t[0],
        vmax: vmax.download()?[0],
        vmin: vmin.download()?[0],
        cas_count: cas.download()?[0],
        bits: bits.download()?[0],
    })
}

/// D (32x16) = C + A (32x32) · B (32x16), all row-major, through `mma_m16n8k16_f16`
/// (`bf16 == false`) or `_bf16`; A and B are rounded to the input type first.
pub fn mma(device: &Device, bf16_inputs: bool, a: &[f32], b: &[f32], c: &[f32]) -> Result<Vec<f32>> {
    assert_eq!((a.len(), b.len(), c.len()), (32 * 32, 32 * 16, 32 * 16));
    let cb = device.upload(c)?;
    let mut d = filled(device, 32 * 16, f32::NAN)?;
    let cfg = LaunchConfig::linear(1, 64, 0);
    if bf16_inputs {
        let ab = device.upload(&a.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())?;
        let bb = device.upload(&b.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())?;
        selftest_mma_bf16(device, &cfg, &ab, &bb, &cb, &mut d)?;
    } else {
        let ab = device.upload(&a.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>())?;
        let bb = device.upload(&b.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>())?;
        selftest_mma_f16(device, &cfg, &ab, &bb, &cb, &mut d)?;
    }
    d.download()
}

/// Runs `selftest_ldmatrix` on four 8x8 matrices of 16-bit patterns (`src[m*64 + r*8 + c]`):
/// `out[((variant * 32) + lane) * 4 + i]`, variants x1, x2, x4, x1_trans, x2_trans, x4_trans.
pub fn ldmatrix(device: &Device, src: &[u16]) -> Result<Vec<u32>> {
    assert_eq!(src.len(), 256);
    let sb = device.upload(&src.iter().map(|&v| f16::from_bits(v)).collect::<Vec<_>>())?;
    let mut out = filled(device, 6 * 32 * 4, SENTINEL_U32)?;
    selftest_ldmatrix(device, &LaunchConfig::linear(1, 32, 0), &sb, &mut out)?;
    out.download()
}

/// Runs `selftest_oob` (which reads `x[x.len()]`) with one thread per element.
pub fn oob(device: &Device, x: &[f32]) -> Result<Vec<f32>> {
    let xb = device.upload(x)?;
    let mut out = device.zeros::<f32>(x.len())?;
    let cfg = LaunchConfig::for_items(x.len(), 64, 64, 0)?;
    selftest_oob(device, &cfg, &xb, &mut out, int(x.len()))?;
    out.download()
}

/// Kernels that must fail on the emulator (never run them on a GPU: some never finish), and
/// two that CUDA allows although they look wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// Even threads at `__syncthreads`, odd threads at `__syncwarp`.
    Deadlock,
    /// `__syncthreads` at two call sites.
    DivergentSync,
    /// A lane calls a shuffle with a mask that does not contain itself.
    SelfNotInMask,
    /// A shuffle reads a lane that is in range but not in the mask.
    SourceNotInMask,
    /// Lanes of one mask meet at different collectives.
    CollectiveMismatch,
    /// A lane exits while the others shuffle with it in the mask (allowed, as in CUDA: the
    /// exited lane's mask bit is ignored).
    CollectiveExited,
    /// Two lanes of one collective pass different masks.
    MaskMismatch,
    /// A full-mask warp reduction in a partial warp (launch with a block size that is not a
    /// multiple of 32): allowed, as in CUDA (the missing lanes' bits are ignored).
    PartialWarpFullMask,
}

impl Broken {
    /// The kernel's name.
    pub fn kernel(self) -> &'static str {
        match self {
            Broken::Deadlock => "selftest_deadlock",
            Broken::DivergentSync => "selftest_divergent_sync",
            Broken::SelfNotInMask => "selftest_shfl_self_not_in_mask",
            Broken::SourceNotInMask => "selftest_shfl_source_not_in_mask",
            Broken::CollectiveMismatch => "selftest_collective_mismatch",
            Broken::CollectiveExited => "selftest_collective_exited",
            Broken::MaskMismatch => "selftest_mask_mismatch",
            Broken::PartialWarpFullMask => "selftest_partial_warp_full_mask",
        }
    }
}

/// Launches one of the [`Broken`] kernels on `blocks` blocks of `threads` threads.
pub fn run_broken(device: &Device, which: Broken, blocks: u32, threads: u32) -> Result<()> {
    let n = blocks as usize * threads as usize;
    let cfg = LaunchConfig::linear(blocks, threads, 0);
    let mut ints = device.zeros::<i32>(n)?;
    let mut floats = device.zeros::<f32>(n)?;
    match which {
        Broken::Deadlock => selftest_deadlock(device, &cfg, &mut ints),
        Broken::DivergentSync => selftest_divergent_sync(device, &cfg, &mut ints),
        Broken::SelfNotInMask => selftest_shfl_self_not_in_mask(device, &cfg, &mut floats),
        Broken::SourceNotInMask => selftest_shfl_source_not_in_mask(device, &cfg, &mut floats),
        Broken::CollectiveMismatch => selftest_collective_mismatch(device, &cfg, &mut floats),
        Broken::CollectiveExited => selftest_collective_exited(device, &cfg, &mut floats),
        Broken::MaskMismatch => selftest_mask_mismatch(device, &cfg, &mut floats),
        Broken::PartialWarpFullMask => selftest_partial_warp_full_mask(device, &cfg, &mut floats),
    }
}

/// Runs `selftest_with_barrier` (`barrier == true`) or `selftest_without_barrier` on blocks
/// of `threads` threads: `out[g] = x[left neighbour] + x[right neighbour]` within each block.
pub fn neighbour_sum(device: &Device, x: &[f32], threads: u32, barrier: bool) -> Result<Vec<f32>> {
    assert!(threads <= 256 && x.len() % threads as usize == 0);
    let xb = device.upload(x)?;
    let mut out = filled(device, x.len(), f32::NAN)?;
    let cfg = LaunchConfig::linear((x.len() / threads as usize) as u32, threads, 0);
    if barrier {
        selftest_with_barrier(device, &cfg, &xb, &mut out)?;
    } else {
        selftest_without_barrier(device, &cfg, &xb, &mut out)?;
    }
    out.download()
}

/// Results of `selftest_half_convert`.
#[derive(Debug)]
pub struct HalfConversions {
    pub f16: Vec<f16>,
    pub bf16: Vec<bf16>,
    pub back_f16: Vec<f32>,
    pub back_bf16: Vec<f32>,
    /// Low half: f16 bits of x (via `__floats2half2_rn`); high half: bf16 bits of x.
    pub pair: Vec<u32>,
    /// Disagreements between the generic helpers and the intrinsics (must be 0).
    pub mismatches: i32,
}

/// Converts every element of `x` to f16 and bf16 on the device.
pub fn half_convert(device: &Device, x: &[f32]) -> Result<HalfConversions> {
    let n = x.len();
    let xb = device.upload(x)?;
    let mut h16 = device.zeros::<f16>(n)?;
    let mut hb = device.zeros::<bf16>(n)?;
    let mut back16 = device.zeros::<f32>(n)?;
    let mut backb = device.zeros::<f32>(n)?;
    let mut pair = device.zeros::<u32>(n)?;
    let mut mismatches = device.zeros::<i32>(1)?;
    let cfg = LaunchConfig::for_items(n, 256, 256, 0)?;
    selftest_half_convert(
        device,
        &cfg,
        &xb,
        int(n),
        &mut h16,
        &mut hb,
        &mut back16,
        &mut backb,
        &mut pair,
        &mut mismatches,
    )?;
    Ok(HalfConversions {
        f16: h16.download()?,
        bf16: hb.download()?,
        back_f16: back16.download()?,
        back_bf16: backb.download()?,
        pair: pair.download()?,
        mismatches: mismatches.download()?[0],
    })
}

/// Runs `selftest_cp_async` (one block of 64 threads) on 128 float4 chunks (`x.len() == 512`):
/// returns (`out`, 128 sums; `out16`, 256 words).
pub fn cp_async(device: &Device, x: &[f32]) -> Result<(Vec<f32>, Vec<u32>)> {
    assert_eq!(x.len(), 512);
    let xb = device.upload(x)?;
    let mut out = filled(device, 128, f32::NAN)?;
    let mut out16 = filled(device, 256, SENTINEL_U32)?;
    selftest_cp_async(device, &LaunchConfig::linear(1, 64, 2 * 64 * 16), &xb, &mut out, &mut out16)?;
    Ok((out.download()?, out16.download()?))
}

// ---- warp convergence (kernels/selftest/warp_converge.cu) ----

declare_kernels! {
    /// C: `selftest_warp_aggregate(const int* pred, unsigned* ctr, unsigned* masks)`
    fn selftest_warp_aggregate(pred: input i32, ctr: output u32, masks: output u32);
    /// C: `selftest_activemask_branches(const int* pred, unsigned* out)`
    fn selftest_activemask_branches(pred: input i32, out: output u32);
    /// C: `selftest_partial_warp_reduce(unsigned* out)`
    fn selftest_partial_warp_reduce(out: output u32);
    /// C: `selftest_shfl_after_exit(unsigned* out)`
    fn selftest_shfl_after_exit(out: output u32);
}

/// The warp-aggregated atomic over `pred` on blocks of 256 threads (`pred.len()` a multiple of
/// 256): returns (the counter, each thread's `__activemask()`; `SENTINEL_U32` where `pred` is 0).
pub fn warp_aggregate(device: &Device, pred: &[i32]) -> Result<(u32, Vec<u32>)> {
    assert_eq!(pred.len() % 256, 0);
    let pb = device.upload(pred)?;
    let mut ctr = device.zeros::<u32>(1)?;
    let mut masks = filled(device, pred.len(), SENTINEL_U32)?;
    let cfg = LaunchConfig::linear((pred.len() / 256) as u32, 256, 0);
    selftest_warp_aggregate(device, &cfg, &pb, &mut ctr, &mut masks)?;
    Ok((ctr.download()?[0], masks.download()?))
}

/// `__activemask()` from the branch taken by `if (pred[g])`, on blocks of `threads` threads
/// (dividing `pred.len()`).
pub fn activemask_branches(device: &Device, pred: &[i32], threads: u32) -> Result<Vec<u32>> {
    assert_eq!(pred.len() % threads as usize, 0);
    let pb = device.upload(pred)?;
    let mut out = filled(device, pred.len(), SENTINEL_U32)?;
    let cfg = LaunchConfig::linear((pred.len() / threads as usize) as u32, threads, 0);
    selftest_activemask_branches(device, &cfg, &pb, &mut out)?;
    out.download()
}

/// Runs `selftest_partial_warp_reduce` on one block of 48 threads: 4 words per thread.
pub fn partial_warp_reduce(device: &Device) -> Result<Vec<u32>> {
    let mut out = filled(device, 48 * 4, SENTINEL_U32)?;
    selftest_partial_warp_reduce(device, &LaunchConfig::linear(1, 48, 0), &mut out)?;
    out.download()
}

/// Runs `selftest_shfl_after_exit` on `blocks` blocks of `threads` threads (a multiple of
/// 32): 4 words per thread, `SENTINEL_U32` for the lanes 31 that returned.
pub fn shfl_after_exit(device: &Device, blocks: u32, threads: u32) -> Result<Vec<u32>> {
    assert_eq!(threads % 32, 0);
    let mut out = filled(device, blocks as usize * threads as usize * 4, SENTINEL_U32)?;
    selftest_shfl_after_exit(device, &LaunchConfig::linear(blocks, threads, 0), &mut out)?;
    out.download()
}

// ---- profile probes (kernels/selftest/profile_probes.cu) ----

declare_kernels! {
    /// C: `selftest_profile_global(const float* src, float* out, int stride)`
    fn selftest_profile_global(src: input f32, out: output f32, stride: scalar i32);
    /// C: `selftest_profile_transpose(const float* src, float* out, int pitch)`
    fn selftest_profile_transpose(src: input f32, out: output f32, pitch: scalar i32);
    /// C: `selftest_profile_shared_wide(unsigned* out, int pattern)`
    fn selftest_profile_shared_wide(out: output u32, pattern: scalar i32);
}

/// Spare elements the probes need: they round their pointers up to 128 bytes.
const PROBE_SPARE: usize = 32;

/// Runs `selftest_profile_global` on `blocks` blocks of 64 threads: `out[t] = x[t · stride]`.
/// `x` needs `blocks · 64 · stride` elements.
pub fn profile_global(device: &Device, x: &[f32], blocks: u32, stride: usize) -> Result<Vec<f32>> {
    let threads = blocks as usize * 64;
    assert!(stride >= 1 && x.len() >= threads * stride);
    let mut padded = vec![0.0f32; x.len() + PROBE_SPARE];
    padded[..x.len()].copy_from_slice(x);
    let xb = device.upload(&padded)?;
    let mut out = device.zeros::<f32>(threads + PROBE_SPARE)?;
    selftest_profile_global(device, &LaunchConfig::linear(blocks, 64, 0), &xb, &mut out, int(stride))?;
    out.download()
}

/// Runs `selftest_profile_transpose` on a 32×32 matrix `x` (row-major) with a shared tile of
/// `pitch` floats per row (32: unpadded, 33: padded); returns the downloaded output buffer,
/// whose transpose starts at the first 128-byte boundary.
pub fn profile_transpose(device: &Device, x: &[f32], pitch: usize) -> Result<Vec<f32>> {
    assert!(x.len() == 32 * 32 && pitch >= 32);
    let mut padded = vec![0.0f32; x.len() + PROBE_SPARE];
    padded[..x.len()].copy_from_slice(x);
    let xb = device.upload(&padded)?;
    let mut out = device.zeros::<f32>(x.len() + PROBE_SPARE)?;
    let cfg = LaunchConfig { grid: (1, 1, 1), block: (32, 32, 1), shared_mem_bytes: (32 * pitch * 4) as u32 };
    selftest_profile_transpose(device, &cfg, &xb, &mut out, int(pitch))?;
    out.download()
}

/// Runs `selftest_profile_shared_wide` (one warp) with access `pattern` 0..=7 (see the
/// kernel's header); returns the 32 sums.
pub fn profile_shared_wide(device: &Device, pattern: i32) -> Result<Vec<u32>> {
    let mut out = device.zeros::<u32>(32)?;
    selftest_profile_shared_wide(device, &LaunchConfig::linear(1, 32, 4096), &mut out, pattern)?;
    out.download()
}

// ---- primitives (kernels/selftest/primitives_*.cu) ----
// One self-test per primitive of kernels/host/cuda_host.h sections 7-9 and the make_*
// constructors of section 3; tests/emulator_primitives.rs computes the expected values.

declare_kernels! {
    /// C: `selftest_prim_atomic_ops(const int* op, const unsigned long long* operand,
    ///     const unsigned long long* compare, int n, unsigned long long* cell, unsigned long long* old)`
    fn selftest_prim_atomic_ops(op: input i32, operand: input u64, compare: input u64, n: scalar i32,
        cell: output u64, old: output u64);
    /// C: `selftest_prim_atomic_contention(const unsigned* src, int* ci, unsigned* cu, unsigned long long* cl,
    ///     float* cf, unsigned* olds32, unsigned long long* olds64, unsigned inc_limit, unsigned dec_limit)`
    fn selftest_prim_atomic_contention(src: input u32, ci: output i32, cu: output u32, cl: output u64,
        cf: output f32, olds32: output u32, olds64: output u64, inc_limit: scalar u32, dec_limit: scalar u32);
    /// C: `selftest_prim_threadfence(const unsigned* src, int n, unsigned* partial, unsigned* count,
    ///     unsigned* total)`
    fn selftest_prim_threadfence(src: input u32, n: scalar i32, partial: output u32, count: output u32,
        total: output u32);
    /// C: `selftest_prim_float(const float* x, const float* y, const float* z, int n, float* out)`
    fn selftest_prim_float(x: input f32, y: input f32, z: input f32, n: scalar i32, out: output f32);
    /// C: `selftest_prim_double(const unsigned long long* x, const unsigned long long* y,
    ///     const unsigned long long* z, int n, unsigned long long* out)` (doubles as bit patterns)
    fn selftest_prim_double(x: input u64, y: input u64, z: input u64, n: scalar i32, out: output u64);
    /// C: `selftest_prim_int(const unsigned* x, const unsigned* y, const unsigned* z, int n, unsigned* out)`
    fn selftest_prim_int(x: input u32, y: input u32, z: input u32, n: scalar i32, out: output u32);
    /// C: `selftest_prim_convert(const float* x, const int* xi, const unsigned long long* x64, int n,
    ///     unsigned* out)`
    fn selftest_prim_convert(x: input f32, xi: input i32, x64: input u64, n: scalar i32, out: output u32);
    /// C: `selftest_prim_make_vectors(const unsigned* src, unsigned char* out)`
    fn selftest_prim_make_vectors(src: input u32, out: output u8);
    /// C: `selftest_prim_half(const tessera::f16* ha, const tessera::f16* hb, const tessera::bf16* ba,
    ///     const tessera::bf16* bb, const float* x, int n, float* arith_out, unsigned* cmp,
    ///     tessera::f16* bits16, tessera::bf16* bitsb, float* floats)`
    fn selftest_prim_half(ha: input f16, hb: input f16, ba: input bf16, bb: input bf16, x: input f32, n: scalar i32,
        arith_out: output f32, cmp: output u32, bits16: output f16, bitsb: output bf16, floats: output f32);
}

/// Number of atomic operations `selftest_prim_atomic_ops` numbers (op codes 0..ATOMIC_OPS).
pub const ATOMIC_OPS: i32 = 33;

/// Runs `selftest_prim_atomic_ops`, one thread per case: case `i` applies atomic number
/// `op[i]` to `cell[i]` with `operand[i]` (and `compare[i]`). Returns (cells after, olds).
pub fn prim_atomic_ops(
    device: &Device,
    op: &[i32],
    operand: &[u64],
    compare: &[u64],
    cell: &[u64],
) -> Result<(Vec<u64>, Vec<u64>)> {
    let n = op.len();
    assert!(operand.len() == n && compare.len() == n && cell.len() == n);
    let (opb, vb, wb) = (device.upload(op)?, device.upload(operand)?, device.upload(compare)?);
    let mut cells = device.upload(cell)?;
    let mut old = filled(device, n, 0xbad0_bad0_bad0_bad0u64)?;
    let cfg = LaunchConfig::for_items(n, 128, 128, 0)?;
    selftest_prim_atomic_ops(device, &cfg, &opb, &vb, &wb, int(n), &mut cells, &mut old)?;
    Ok((cells.download()?, old.download()?))
}

/// Cells and returned values of `selftest_prim_atomic_contention` (see the kernel's header).
#[derive(Debug)]
pub struct AtomicContention {
    pub ci: Vec<i32>,
    pub cu: Vec<u32>,
    pub cl: Vec<u64>,
    pub cf: Vec<f32>,
    /// 9 per thread.
    pub olds32: Vec<u32>,
    /// 3 per thread.
    pub olds64: Vec<u64>,
}

/// Runs `selftest_prim_atomic_contention` on `blocks` blocks of `threads` threads (`src`
/// holds 2 words per thread) with the cells' initial values.
#[allow(clippy::too_many_arguments)]
pub fn prim_atomic_contention(
    device: &Device,
    src: &[u32],
    ci: &[i32],
    cu: &[u32],
    cl: &[u64],
    cf: &[f32],
    limits: (u32, u32),
    blocks: u32,
    threads: u32,
) -> Result<AtomicContention> {
    let n = blocks as usize * threads as usize;
    assert_eq!(src.len(), 2 * n);
    assert!(ci.len() >= 10 && cu.len() >= 15 && cl.len() >= 12 && cf.len() >= 2);
    let sb = device.upload(src)?;
    let (mut bi, mut bu, mut bl, mut bf) =
        (device.upload(ci)?, device.upload(cu)?, device.upload(cl)?, device.upload(cf)?);
    let mut o32 = filled(device, n * 9, SENTINEL_U32)?;
    let mut o64 = filled(device, n * 3, SENTINEL_U32 as u64)?;
    let cfg = LaunchConfig::linear(blocks, threads, 0);
    selftest_prim_atomic_contention(
        device, &cfg, &sb, &mut bi, &mut bu, &mut bl, &mut bf, &mut o32, &mut o64, limits.0, limits.1,
    )?;
    Ok(AtomicContention {
        ci: bi.download()?,
        cu: bu.download()?,
        cl: bl.download()?,
        cf: bf.download()?,
        olds32: o32.download()?,
        olds64: o64.download()?,
    })
}

/// Runs `selftest_prim_threadfence` (the last-block reduction) on `blocks` blocks of
/// `threads` threads: returns (per-block partial sums, the counter afterwards, the total).
pub fn prim_threadfence(device: &Device, src: &[u32], blocks: u32, threads: u32) -> Result<(Vec<u32>, u32, u32)> {
    let sb = device.upload(src)?;
    let mut partial = filled(device, blocks as usize, SENTINEL_U32)?;
    let mut count = device.zeros::<u32>(1)?;
    let mut total = filled(device, 1, SENTINEL_U32)?;
    let cfg = LaunchConfig::linear(blocks, threads, 0);
    selftest_prim_threadfence(device, &cfg, &sb, int(src.len()), &mut partial, &mut count, &mut total)?;
    Ok((partial.download()?, count.download()?[0], total.download()?[0]))
}

/// Runs `selftest_prim_float` on the triples (x[i], y[i], z[i]): 12 results per case.
pub fn prim_float(device: &Device, x: &[f32], y: &[f32], z: &[f32]) -> Result<Vec<f32>> {
    let n = x.len();
    assert!(y.len() == n && z.len() == n);
    let (xb, yb, zb) = (device.upload(x)?, device.upload(y)?, device.upload(z)?);
    let mut out = filled(device, n * 12, SENTINEL_F32)?;
    selftest_prim_float(device, &LaunchConfig::for_items(n, 128, 128, 0)?, &xb, &yb, &zb, int(n), &mut out)?;
    out.download()
}

/// Runs `selftest_prim_double` on triples of f64 bit patterns: 12 results per case.
pub fn prim_double(device: &Device, x: &[u64], y: &[u64], z: &[u64]) -> Result<Vec<u64>> {
    let n = x.len();
    assert!(y.len() == n && z.len() == n);
    let (xb, yb, zb) = (device.upload(x)?, device.upload(y)?, device.upload(z)?);
    let mut out = filled(device, n * 12, SENTINEL_U32 as u64)?;
    selftest_prim_double(device, &LaunchConfig::for_items(n, 128, 128, 0)?, &xb, &yb, &zb, int(n), &mut out)?;
    out.download()
}

/// Runs `selftest_prim_int` on the triples (x[i], y[i], z[i]): 39 words per case.
pub fn prim_int(device: &Device, x: &[u32], y: &[u32], z: &[u32]) -> Result<Vec<u32>> {
    let n = x.len();
    assert!(y.len() == n && z.len() == n);
    let (xb, yb, zb) = (device.upload(x)?, device.upload(y)?, device.upload(z)?);
    let mut out = filled(device, n * 39, SENTINEL_U32)?;
    selftest_prim_int(device, &LaunchConfig::for_items(n, 128, 128, 0)?, &xb, &yb, &zb, int(n), &mut out)?;
    out.download()
}

/// Runs `selftest_prim_convert` on (x[i], xi[i], x64[i]): 18 words per case.
pub fn prim_convert(device: &Device, x: &[f32], xi: &[i32], x64: &[u64]) -> Result<Vec<u32>> {
    let n = x.len();
    assert!(xi.len() == n && x64.len() == n);
    let (xb, ib, lb) = (device.upload(x)?, device.upload(xi)?, device.upload(x64)?);
    let mut out = filled(device, n * 18, SENTINEL_U32)?;
    selftest_prim_convert(device, &LaunchConfig::for_items(n, 128, 128, 0)?, &xb, &ib, &lb, int(n), &mut out)?;
    out.download()
}

/// Number of vector types `selftest_prim_make_vectors` builds.
pub const VECTOR_TYPES: usize = 20;

/// Runs `selftest_prim_make_vectors` (`src`: 4 words per vector type): 32 bytes per type.
pub fn prim_make_vectors(device: &Device, src: &[u32]) -> Result<Vec<u8>> {
    assert_eq!(src.len(), 4 * VECTOR_TYPES);
    let sb = device.upload(src)?;
    let mut out = filled(device, 32 * VECTOR_TYPES, 0xa5u8)?;
    selftest_prim_make_vectors(device, &LaunchConfig::linear(1, 32, 0), &sb, &mut out)?;
    out.download()
}

/// Results of `selftest_prim_half` (see the kernel's header).
#[derive(Debug)]
pub struct HalfPrimitives {
    /// 20 per case.
    pub arith: Vec<f32>,
    /// 2 per case.
    pub cmp: Vec<u32>,
    /// 12 per case.
    pub bits16: Vec<f16>,
    /// 12 per case.
    pub bitsb: Vec<bf16>,
    /// 12 per case.
    pub floats: Vec<f32>,
}

/// Runs `selftest_prim_half` on f16 pairs (ha[i], hb[i]), bf16 pairs (ba[i], bb[i]) and x[i].
pub fn prim_half(
    device: &Device,
    ha: &[f16],
    hb: &[f16],
    ba: &[bf16],
    bb: &[bf16],
    x: &[f32],
) -> Result<HalfPrimitives> {
    let n = ha.len();
    assert!(hb.len() == n && ba.len() == n && bb.len() == n && x.len() == n);
    let (hab, hbb, bab, bbb, xb) =
        (device.upload(ha)?, device.upload(hb)?, device.upload(ba)?, device.upload(bb)?, device.upload(x)?);
    let mut arith = filled(device, n * 20, SENTINEL_F32)?;
    let mut cmp = filled(device, n * 2, SENTINEL_U32)?;
    let mut bits16 = filled(device, n * 12, f16::from_bits(0xdead))?;
    let mut bitsb = filled(device, n * 12, bf16::from_bits(0xdead))?;
    let mut floats = filled(device, n * 12, SENTINEL_F32)?;
    let cfg = LaunchConfig::for_items(n, 128, 128, 0)?;
    selftest_prim_half(
        device,
        &cfg,
        &hab,
        &hbb,
        &bab,
        &bbb,
        &xb,
        int(n),
        &mut arith,
        &mut cmp,
        &mut bits16,
        &mut bitsb,
        &mut floats,
    )?;
    Ok(HalfPrimitives {
        arith: arith.download()?,
        cmp: cmp.download()?,
        bits16: bits16.download()?,
        bitsb: bitsb.download()?,
        floats: floats.download()?,
    })
}

// ---- mma.sync m16n8k8 and f32_to_tf32 (kernels/selftest/mma_k8.cu) ----------------------------

declare_kernels! {
    /// C: `selftest_mma_k8_f16(const __half* A, const __half* B, const float* C, float* D, int variant)`
    fn selftest_mma_k8_f16(a: input f16, b: input f16, c: input f32, d: output f32, variant: scalar i32);
    /// C: `selftest_mma_k8_bf16(const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C, float* D,
    ///     int variant)`
    fn selftest_mma_k8_bf16(a: input bf16, b: input bf16, c: input f32, d: output f32, variant: scalar i32);
    /// C: `selftest_mma_k8_tf32(const float* A, const float* B, const float* C, float* D, int variant)`
    fn selftest_mma_k8_tf32(a: input f32, b: input f32, c: input f32, d: output f32, variant: scalar i32);
    /// C: `selftest_f32_to_tf32(const float* x, int n, unsigned* out)`
    fn selftest_f32_to_tf32(x: input f32, n: scalar i32, out: output u32);
}

/// The input type of [`mma_k8`]: which `mma_m16n8k8_*` wrapper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmaK8Type {
    F16,
    Bf16,
    Tf32,
}

/// D (16x8) = C + A (16x8) · B (8x8), all row-major, through one `mma_m16n8k8_<type>` by one
/// warp, d aliasing c. F16 / Bf16: A and B are rounded to the input type first; `variant` 0 is
/// the correct fragment layout, 1 swaps a[0] and a[1], 2 swaps the halves of b[0]. Tf32: the
/// f32 bit patterns go to the mma as they are with `variant` 0, through `f32_to_tf32` with 1;
/// 2 swaps a[1] and a[2], 3 swaps b[0] and b[1] (see kernels/selftest/mma_k8.cu).
pub fn mma_k8(device: &Device, ty: MmaK8Type, a: &[f32], b: &[f32], c: &[f32], variant: i32) -> Result<Vec<f32>> {
    assert_eq!((a.len(), b.len(), c.len()), (16 * 8, 8 * 8, 16 * 8));
    let cb = device.upload(c)?;
    let mut d = filled(device, 16 * 8, SENTINEL_F32)?;
    let cfg = LaunchConfig::linear(1, 32, 0);
    match ty {
        MmaK8Type::F16 => {
            let ab = device.upload(&a.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>())?;
            let bb = device.upload(&b.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>())?;
            selftest_mma_k8_f16(device, &cfg, &ab, &bb, &cb, &mut d, variant)?;
        }
        MmaK8Type::Bf16 => {
            let ab = device.upload(&a.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())?;
            let bb = device.upload(&b.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>())?;
            selftest_mma_k8_bf16(device, &cfg, &ab, &bb, &cb, &mut d, variant)?;
        }
        MmaK8Type::Tf32 => {
            let (ab, bb) = (device.upload(a)?, device.upload(b)?);
            selftest_mma_k8_tf32(device, &cfg, &ab, &bb, &cb, &mut d, variant)?;
        }
    }
    d.download()
}

/// `f32_to_tf32(x[i])` (cvt.rna.tf32.f32) for every element, as bit patterns.
pub fn f32_to_tf32(device: &Device, x: &[f32]) -> Result<Vec<u32>> {
    let xb = device.upload(x)?;
    let mut out = filled(device, x.len(), SENTINEL_U32)?;
    let cfg = LaunchConfig::for_items(x.len(), 64, 64, 0)?;
    selftest_f32_to_tf32(device, &cfg, &xb, int(x.len()), &mut out)?;
    out.download()
}

/// `selftest_mma_k8_tf32` launched with `threads` threads (fewer than 32: an incomplete warp,
/// which an mma must report as misuse).
pub fn mma_k8_tf32_threads(device: &Device, threads: u32) -> Result<()> {
    let zeros = device.upload(&[0.0f32; 16 * 8])?;
    let b = device.upload(&[0.0f32; 8 * 8])?;
    let mut d = filled(device, 16 * 8, SENTINEL_F32)?;
    selftest_mma_k8_tf32(device, &LaunchConfig::linear(1, threads, 0), &zeros, &b, &zeros, &mut d, 0)
}
