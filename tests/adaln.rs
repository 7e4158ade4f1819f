//! adaLN and LayerNorm kernels (kernels/adaln.cu) on the emulator — and on a GPU when
//! present — against the f64 reference (src/reference/adaln.rs), every variant and dtype:
//! ragged D (1 .. 8192), DiT's strided shift/scale chunks of a [B, 6D] buffer, plain [B, D]
//! modulation, misaligned views (the element fallback), constant rows, large f16/bf16
//! values, non-finite rows, bad arguments, bit-identical reruns.

mod common;

use half::{bf16, f16};
use proptest::prelude::*;
use tessera::reference::adaln as reference;
use tessera::{
    adaln_modulate_into, layer_norm_into, AdalnShape, Affine, BackendKind, Device, Error, FloatElement, Modulation,
    NormKernel, NormOptions,
};

/// The kernels that can run rows of `dim` (Warp holds D ≤ 512).
fn kernels(dim: usize) -> Vec<NormKernel> {
    let mut k = vec![NormKernel::Simple, NormKernel::Block, NormKernel::Auto];
    if dim <= 512 {
        k.push(NormKernel::Warp);
    }
    k
}

fn uniform(rng: &mut common::Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * (rng.word() >> 8) as f32 / 16_777_216.0
}

fn values<T: FloatElement>(rng: &mut common::Rng, n: usize, lo: f32, hi: f32) -> Vec<T> {
    (0..n).map(|_| T::from_f32(uniform(rng, lo, hi))).collect()
}

fn to_f64<T: FloatElement>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f32() as f64).collect()
}

/// One adaLN case: x [B, T, D] and a modulation buffer [B, chunks·D] with shift and scale
/// taken as chunks `sh` and `sc` (chunks = 1 with sh = sc = 0: plain [B, D], shift = scale).
/// `pad` leading elements before x and before the output (pad = 1: misaligned views).
struct Case<T> {
    shape: AdalnShape,
    x: Vec<T>,
    emb: Vec<T>,
    chunks: usize,
    sh: usize,
    sc: usize,
    pad: usize,
}

impl<T: FloatElement> Case<T> {
    fn random(seed: u64, shape: AdalnShape, chunks: usize, sh: usize, sc: usize, pad: usize) -> Self {
        let mut rng = common::Rng(seed);
        let n = shape.batch * shape.tokens * shape.dim;
        let mut x: Vec<T> = values(&mut rng, n, -2.0, 2.0);
        // An offset per row, so that the mean is not near zero.
        for (r, row) in x.chunks_mut(shape.dim.max(1)).enumerate() {
            let o = (r % 5) as f32 * 1.5 - 3.0;
            for v in row {
                *v = T::from_f32(v.to_f32() + o);
            }
        }
        let emb = values(&mut rng, shape.batch * chunks * shape.dim, -1.0, 1.0);
        Case { shape, x, emb, chunks, sh, sc, pad }
    }

    fn reference(&self) -> Vec<T> {
        let AdalnShape { batch, tokens, dim } = self.shape;
        let stride = self.chunks * dim;
        let span = |c: usize| &self.emb[(c * dim).min(self.emb.len())..];
        let mut out = vec![T::default(); self.x.len()];
        reference::modulate(&self.x, batch, tokens, dim, span(self.sh), span(self.sc), stride, 1e-6, &mut out);
        out
    }

    /// What the unfused baseline computes: LayerNorm rounded to T (its first kernel's
    /// output), then `y · (1 + scale) + shift` in f32, rounded to T. Its error against the
    /// fused reference includes that intermediate rounding, amplified by |1 + scale|, so it
    /// is compared with this composition instead.
    fn unfused_reference(&self) -> Vec<T> {
        let AdalnShape { batch, tokens, dim } = self.shape;
        let stride = self.chunks * dim;
        let mut ln = vec![T::default(); self.x.len()];
        reference::layer_norm(&self.x, dim, None, 1e-6, &mut ln);
        let mut out = ln.clone();
        for b in 0..batch {
            for t in 0..tokens {
                for j in 0..dim {
                    let i = (b * tokens + t) * dim + j;
                    let shift = self.emb[b * stride + self.sh * dim + j].to_f32();
                    let g = self.emb[b * stride + self.sc * dim + j].to_f32() + 1.0;
                    out[i] = T::from_f32(ln[i].to_f32() * g + shift);
                }
            }
        }
        out
    }

    fn run(&self, device: &Device, kernel: NormKernel) -> tessera::Result<Vec<T>> {
        let mut xs = vec![T::default(); self.pad];
        xs.extend_from_slice(&self.x);
        let x = device.upload(&xs)?;
        let emb = device.upload(&self.emb)?;
        let mut out = device.zeros::<T>(self.pad + self.x.len())?;
        let m = Modulation::chunks(&emb, self.shape.dim, self.chunks, self.sh, self.sc)?;
        let options = NormOptions { kernel, ..NormOptions::default() };
        adaln_modulate_into(device, x.view(self.pad..)?, self.shape, &m, &options, out.view_mut(self.pad..)?)?;
        let got = out.download()?;
        assert!(got[..self.pad].iter().all(|v| *v == T::default()), "wrote before the output view");
        Ok(got[self.pad..].to_vec())
    }

    fn check(&self, what: &str) {
        let mut all = kernels(self.shape.dim);
        all.push(NormKernel::Unfused);
        self.check_kernels(what, &all);
    }

    fn check_kernels(&self, what: &str, kernels: &[NormKernel]) {
        let fused = to_f64(&self.reference());
        let unfused = if kernels.contains(&NormKernel::Unfused) { to_f64(&self.unfused_reference()) } else { vec![] };
        for device in common::kernel_devices("adaln") {
            for &kernel in kernels {
                let want = if kernel == NormKernel::Unfused { &unfused } else { &fused };
                let got = to_f64(&self.run(&device, kernel).unwrap());
                let ctx =
                    format!("{what}: {kernel:?} on {} {:?} {:?} pad {}", device.name(), T::DTYPE, self.shape, self.pad);
                common::assert_close(&ctx, &got, want, T::DTYPE, self.shape.dim);
            }
        }
    }
}

/// D from the ragged list, small B and T.
fn shape_strategy() -> impl Strategy<Value = AdalnShape> {
    (prop_oneof![Just(1usize), Just(7), Just(33), Just(385), Just(1025), 1usize..600], 1usize..4, 1usize..12)
        .prop_map(|(dim, batch, tokens)| AdalnShape { batch, tokens, dim })
        // Keep each case cheap for the instrumented emulator.
        .prop_filter("small", |s| s.batch * s.tokens * s.dim <= 24_000)
}

fn modulation_strategy() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    // (chunks, shift chunk, scale chunk, pad): DiT's 6 chunks (msa: 0/1, mlp: 3/4) or [B, D]
    prop_oneof![Just((6usize, 0usize, 1usize)), Just((6, 3, 4)), Just((1, 0, 0)), Just((2, 0, 1))]
        .prop_flat_map(|(c, a, b)| (Just(c), Just(a), Just(b), prop_oneof![3 => Just(0usize), 1 => Just(1)]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn modulate_f32_matches_reference(shape in shape_strategy(), (c, sh, sc, pad) in modulation_strategy(), seed in any::<u64>()) {
        Case::<f32>::random(seed, shape, c, sh, sc, pad).check("random");
    }

    #[test]
    fn modulate_f16_matches_reference(shape in shape_strategy(), (c, sh, sc, pad) in modulation_strategy(), seed in any::<u64>()) {
        Case::<f16>::random(seed, shape, c, sh, sc, pad).check("random");
    }

    #[test]
    fn modulate_bf16_matches_reference(shape in shape_strategy(), (c, sh, sc, pad) in modulation_strategy(), seed in any::<u64>()) {
        Case::<bf16>::random(seed, shape, c, sh, sc, pad).check("random");
    }
}

/// The ragged D list in every dtype, aligned and misaligned, with DiT's chunks.
#[test]
fn ragged_dims_every_dtype() {
    for (i, dim) in [1usize, 7, 33, 385, 1025].into_iter().enumerate() {
        for pad in [0, 1] {
            let shape = AdalnShape { batch: 2, tokens: 3, dim };
            Case::<f32>::random(i as u64, shape, 6, 0, 1, pad).check("ragged");
            Case::<f16>::random(i as u64, shape, 6, 3, 4, pad).check("ragged");
            Case::<bf16>::random(i as u64, shape, 6, 0, 1, pad).check("ragged");
        }
    }
}

/// Large rows (block variant with 288 / 512 threads), few of them.
#[test]
fn large_dims() {
    for dim in [4097usize, 8192] {
        let shape = AdalnShape { batch: 2, tokens: 1, dim };
        Case::<f32>::random(7, shape, 6, 0, 1, 0).check("large");
        Case::<bf16>::random(8, shape, 6, 3, 4, 0).check("large");
        Case::<f16>::random(9, AdalnShape { batch: 1, ..shape }, 2, 0, 1, 1).check("large misaligned");
    }
}

/// More tokens than a team holds (ADALN_ROWS_PER_TEAM = 8): teams end at sample boundaries.
#[test]
fn teams_split_samples() {
    for (tokens, dim) in [(19usize, 40usize), (8, 600), (17, 16)] {
        Case::<f32>::random(tokens as u64, AdalnShape { batch: 3, tokens, dim }, 6, 0, 1, 0).check("teams");
    }
}

/// Enough rows that the plan gives each team more than ADALN_ROWS_PER_TEAM = 8 rows (the
/// grid still fills 264 blocks): warp teams (4 per block) of 9 and of 64 rows (the cap), block
/// teams of 10 rows; the team sizes do not divide the tokens, so teams end at sample
/// boundaries mid-way.
#[test]
fn long_teams_when_the_grid_is_full() {
    // The plan only concerns the fast variants (the others are per row or per element).
    let fast = [NormKernel::Warp, NormKernel::Block];
    // 3 · 3001 rows / (264 · 4) → 9 rows per warp team.
    let warp9 = Case::<f32>::random(21, AdalnShape { batch: 3, tokens: 3001, dim: 8 }, 6, 0, 1, 0);
    warp9.check_kernels("warp teams of 9", &fast);
    // 70 001 rows → 67 per team, capped at 64.
    let warp64 = Case::<f16>::random(22, AdalnShape { batch: 1, tokens: 70_001, dim: 4 }, 2, 0, 1, 0);
    warp64.check_kernels("warp teams of 64", &[NormKernel::Warp]);
    // 2 · 1300 rows / 264 → 10 rows per block team (D > 512: the block variant).
    let block10 = Case::<f32>::random(23, AdalnShape { batch: 2, tokens: 1300, dim: 520 }, 6, 3, 4, 0);
    block10.check_kernels("block teams of 10", &[NormKernel::Block]);
}

fn layer_norm_case<T: FloatElement>(rows: usize, dim: usize, affine: bool, pad: usize, seed: u64) {
    let mut rng = common::Rng(seed);
    let x: Vec<T> = values(&mut rng, rows * dim, -3.0, 5.0);
    let w: Vec<T> = values(&mut rng, dim, 0.5, 1.5);
    let b: Vec<T> = values(&mut rng, dim, -1.0, 1.0);
    let mut want = vec![T::default(); x.len()];
    reference::layer_norm(&x, dim, affine.then_some((&w[..], &b[..])), 1e-6, &mut want);
    let want = to_f64(&want);
    for device in common::kernel_devices("adaln") {
        let mut xs = vec![T::default(); pad];
        xs.extend_from_slice(&x);
        let xd = device.upload(&xs).unwrap();
        let mut wb = vec![T::default(); pad];
        wb.extend_from_slice(&w);
        wb.extend_from_slice(&b);
        let wbd = device.upload(&wb).unwrap();
        for kernel in kernels(dim) {
            let a = Affine::new(wbd.view(pad..pad + dim).unwrap(), wbd.view(pad + dim..).unwrap());
            let mut out = device.zeros::<T>(x.len()).unwrap();
            let options = NormOptions { kernel, ..NormOptions::default() };
            layer_norm_into(&device, xd.view(pad..).unwrap(), dim, affine.then_some(a), &options, &mut out).unwrap();
            let got = to_f64(&out.download().unwrap());
            let ctx = format!(
                "layer_norm affine={affine} {kernel:?} on {} {:?} rows {rows} D {dim}",
                device.name(),
                T::DTYPE
            );
            common::assert_close(&ctx, &got, &want, T::DTYPE, dim);
        }
    }
}

#[test]
fn layer_norm_matches_reference() {
    for (i, (rows, dim)) in [(5usize, 1usize), (9, 7), (13, 33), (4, 385), (3, 768), (2, 1025)].into_iter().enumerate()
    {
        for affine in [true, false] {
            layer_norm_case::<f32>(rows, dim, affine, i % 2, i as u64);
            layer_norm_case::<f16>(rows, dim, affine, 0, i as u64 + 10);
            layer_norm_case::<bf16>(rows, dim, affine, (i + 1) % 2, i as u64 + 20);
        }
    }
}

/// Constant rows: variance 0, rstd = 1/√eps, and y = shift exactly (finite).
fn constant_rows<T: FloatElement>() {
    for dim in [1usize, 7, 64, 1152] {
        let shape = AdalnShape { batch: 2, tokens: 3, dim };
        let mut case = Case::<T>::random(dim as u64, shape, 6, 0, 1, 0);
        for (r, row) in case.x.chunks_mut(dim).enumerate() {
            let c = T::from_f32([0.1f32, -3.7, 1e4, 0.0, 12345.678, -1e-3][r % 6]);
            row.fill(c);
        }
        let want = case.reference();
        for device in common::kernel_devices("adaln") {
            for kernel in kernels(dim) {
                let got = case.run(&device, kernel).unwrap();
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let b = i / (3 * dim);
                    let shift = case.emb[b * 6 * dim + i % dim];
                    assert!(g.to_f32().is_finite(), "{kernel:?} {:?} D {dim}: y[{i}] = {g:?}", T::DTYPE);
                    assert_eq!(
                        g.to_f32(),
                        shift.to_f32(),
                        "{kernel:?} {:?} D {dim}: y[{i}] is not the shift",
                        T::DTYPE
                    );
                    assert_eq!(w.to_f32(), shift.to_f32());
                }
            }
        }
    }
}

#[test]
fn constant_rows_give_the_shift() {
    constant_rows::<f32>();
    constant_rows::<f16>();
    constant_rows::<bf16>();
}

/// f16/bf16 rows with |x| ~ 1e4 (squares ~1e8, beyond f16's range): statistics in f32.
fn large_values<T: FloatElement>() {
    for dim in [33usize, 1152] {
        let mut case = Case::<T>::random(3, AdalnShape { batch: 2, tokens: 2, dim }, 6, 0, 1, 0);
        let mut rng = common::Rng(11);
        case.x = values(&mut rng, case.x.len(), -3e4, 3e4);
        case.x[5] = T::from_f32(6e4); // near f16's maximum
        case.check("large values");
    }
}

#[test]
fn large_values_do_not_overflow() {
    large_values::<f16>();
    large_values::<bf16>();
}

/// A row with NaN or ±Inf is NaN throughout (the reference says so); other rows exact.
fn non_finite<T: FloatElement>() {
    for dim in [7usize, 385, 1025] {
        let mut case = Case::<T>::random(5, AdalnShape { batch: 2, tokens: 4, dim }, 6, 0, 1, 0);
        case.x[dim + 3] = T::from_f32(f32::NAN); // row 1
        case.x[3 * dim] = T::from_f32(f32::NAN); // row 3, first element (the kernels' shift)
        case.x[5 * dim + dim - 1] = T::from_f32(f32::INFINITY); // row 5
        case.x[6 * dim] = T::from_f32(f32::NEG_INFINITY); // row 6, first element
        let want = case.reference();
        for (r, row) in want.chunks(dim).enumerate() {
            assert_eq!(row.iter().all(|v| v.to_f32().is_nan()), [1, 3, 5, 6].contains(&r), "reference row {r}");
        }
        case.check("non-finite");
    }
}

#[test]
fn non_finite_rows_are_nan() {
    non_finite::<f32>();
    non_finite::<bf16>();
}

#[test]
fn reruns_are_bit_identical() {
    for dim in [33usize, 1152] {
        let case = Case::<bf16>::random(21, AdalnShape { batch: 2, tokens: 9, dim }, 6, 0, 1, 0);
        let case32 = Case::<f32>::random(22, AdalnShape { batch: 2, tokens: 9, dim }, 6, 3, 4, 1);
        for device in common::kernel_devices("adaln") {
            for kernel in kernels(dim) {
                let bits = |v: Vec<bf16>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(case.run(&device, kernel).unwrap()), bits(case.run(&device, kernel).unwrap()));
                let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(case32.run(&device, kernel).unwrap()), bits(case32.run(&device, kernel).unwrap()));
            }
        }
    }
}

/// The suite runs under the emulator's checks (memcheck, racecheck, initcheck), and the
/// kernels really launch: one profiled call records its launch.
#[test]
fn runs_under_the_checks() {
    if !tessera::emulator::checks_enabled() {
        // The AddressSanitizer and uninstrumented builds of CI's other steps: no per-access counters.
        eprintln!("runs_under_the_checks: skipped (this build has no emulator checks: TESSERA_SANITIZE ≠ checks)");
        return;
    }
    let case = Case::<f32>::random(1, AdalnShape { batch: 2, tokens: 3, dim: 40 }, 6, 0, 1, 0);
    let (_, records) = tessera::emulator::profile(|| case.run(&Device::emulator(), NormKernel::Warp).unwrap());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kernel, "adaln_norm_warp_f32");
    assert!(records[0].counters.global_load_requests > 0);
}

/// B·T = 0 is fine and launches nothing.
#[test]
fn empty_launches_nothing() {
    for device in [Device::emulator(), Device::cpu()] {
        let x = device.upload::<f32>(&[]).unwrap();
        let emb = device.upload(&[0.0f32; 24]).unwrap();
        let mut out = device.zeros::<f32>(0).unwrap();
        for (batch, tokens) in [(0usize, 5usize), (2, 0), (0, 0)] {
            let m = Modulation::new(emb.view(0..4).unwrap(), emb.view(4..8).unwrap(), 4);
            let shape = AdalnShape { batch, tokens, dim: 4 };
            let m = if batch > 0 { Modulation::new(&emb, &emb, 4) } else { m };
            let (_, records) = tessera::emulator::profile(|| {
                adaln_modulate_into(&device, &x, shape, &m, &NormOptions::default(), &mut out).unwrap()
            });
            assert!(records.is_empty(), "{shape:?} launched a kernel");
        }
        layer_norm_into(&device, &x, 8, None, &NormOptions::default(), &mut out).unwrap();
    }
}

fn invalid_arg(result: tessera::Result<()>) -> String {
    match result {
        Err(Error::InvalidArgument { arg, .. }) => arg.to_string(),
        Err(Error::LengthMismatch { arg, .. }) => format!("len:{arg}"),
        Err(Error::WrongDevice { arg, .. }) => format!("device:{arg}"),
        other => panic!("expected a typed argument error, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    for device in [Device::emulator(), Device::cpu()] {
        let (b, t, d) = (2usize, 3usize, 8usize);
        let x = device.upload(&vec![1.0f32; b * t * d]).unwrap();
        let emb = device.upload(&vec![0.0f32; b * 6 * d]).unwrap();
        let mut out = device.zeros::<f32>(b * t * d).unwrap();
        let shape = AdalnShape { batch: b, tokens: t, dim: d };
        let m = Modulation::chunks(&emb, d, 6, 0, 1).unwrap();
        let opts = NormOptions::default();
        let mut run = |x: tessera::BufferView<'_, f32>, shape: AdalnShape, m: &Modulation<'_, f32>, o: &NormOptions| {
            let mut out = out.as_view_mut();
            invalid_arg(adaln_modulate_into(&device, x, shape, m, o, out.reborrow()))
        };
        let xv = x.as_view();
        assert_eq!(run(xv, AdalnShape { dim: 0, ..shape }, &m, &opts), "dim");
        assert_eq!(run(xv, AdalnShape { dim: 8193, ..shape }, &m, &opts), "dim");
        assert_eq!(run(xv, AdalnShape { tokens: 4, ..shape }, &m, &opts), "len:x");
        assert_eq!(run(x.view(1..).unwrap(), shape, &m, &opts), "len:x");
        assert_eq!(run(xv, AdalnShape { batch: usize::MAX, ..shape }, &m, &opts), "shape");
        assert_eq!(run(xv, shape, &Modulation { row_stride: d - 1, ..m }, &opts), "row_stride");
        let short = Modulation { shift: emb.view(0..6 * d).unwrap(), ..m };
        assert_eq!(run(xv, shape, &short, &opts), "shift");
        let short = Modulation { scale: emb.view(d..d + 6 * d).unwrap(), ..m };
        assert_eq!(run(xv, shape, &short, &opts), "scale");
        // Stride D over the [B, 6D] buffer would be fine; at stride 12D the views are too short.
        assert_eq!(run(xv, shape, &Modulation { row_stride: 12 * d, ..m }, &opts), "shift");
        for eps in [0.0f32, -1e-6, f32::NAN, f32::INFINITY] {
            assert_eq!(run(xv, shape, &m, &NormOptions { eps, ..opts }), "eps", "eps {eps}");
        }
        let big = device.upload(&vec![1.0f32; 2 * 600]).unwrap();
        let big_emb = device.upload(&vec![0.0f32; 2 * 600]).unwrap();
        let bm = Modulation::new(&big_emb, &big_emb, 600);
        let warp = NormOptions { kernel: NormKernel::Warp, ..opts };
        {
            let mut big_out = device.zeros::<f32>(2 * 600).unwrap();
            let big_shape = AdalnShape { batch: 2, tokens: 1, dim: 600 };
            let r = adaln_modulate_into(&device, &big, big_shape, &bm, &warp, &mut big_out);
            assert_eq!(invalid_arg(r), "kernel");
        }
        {
            let mut short_out = device.zeros::<f32>(b * t * d - 1).unwrap();
            assert_eq!(invalid_arg(adaln_modulate_into(&device, &x, shape, &m, &opts, &mut short_out)), "len:out");
        }
        // Chunk helper.
        assert!(matches!(Modulation::chunks(&emb, d, 6, 6, 1), Err(Error::InvalidArgument { arg: "chunks", .. })));
        assert!(matches!(Modulation::chunks(&emb, 5, 6, 0, 1), Err(Error::InvalidArgument { arg: "modulation", .. })));
        assert!(matches!(Modulation::chunks(&emb, 0, 6, 0, 1), Err(Error::InvalidArgument { arg: "dim", .. })));
        // Another device's buffer.
        let other = if device.kind() == BackendKind::Cpu { Device::emulator() } else { Device::cpu() };
        let foreign = other.upload(&vec![0.0f32; b * 6 * d]).unwrap();
        let fm = Modulation::chunks(&foreign, d, 6, 0, 1).unwrap();
        assert_eq!(run(xv, shape, &fm, &opts), "device:shift");

        // layer_norm
        let w = device.upload(&vec![1.0f32; d]).unwrap();
        let a = Affine::new(&w, &w);
        let ln = |x: &tessera::DeviceBuffer<f32>,
                  dim: usize,
                  a: Option<Affine<'_, f32>>,
                  o: &NormOptions,
                  out: &mut tessera::DeviceBuffer<f32>| {
            invalid_arg(layer_norm_into(&device, x, dim, a, o, out))
        };
        assert_eq!(ln(&x, 0, Some(a), &opts, &mut out), "dim");
        assert_eq!(ln(&x, 9000, None, &opts, &mut out), "dim");
        assert_eq!(ln(&x, 7, None, &opts, &mut out), "x");
        assert_eq!(ln(&x, 16, Some(a), &opts, &mut out), "len:weight");
        let a_short = Affine::new(&w, w.view(1..).unwrap());
        assert_eq!(ln(&x, d, Some(a_short), &opts, &mut out), "len:bias");
        assert_eq!(ln(&x, d, None, &NormOptions { eps: 0.0, ..opts }, &mut out), "eps");
        assert_eq!(ln(&x, d, None, &NormOptions { kernel: NormKernel::Unfused, ..opts }, &mut out), "kernel");
        assert_eq!(ln(&big, 600, None, &warp, &mut out), "len:out");
        let mut out1 = device.zeros::<f32>(1200).unwrap();
        assert_eq!(ln(&big, 600, None, &warp, &mut out1), "kernel");
        let mut short = device.zeros::<f32>(b * t * d - 1).unwrap();
        assert_eq!(ln(&x, d, None, &opts, &mut short), "len:out");
    }
}
