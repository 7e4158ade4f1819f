//! The ViT image tokenizer on device: u8 images → [`VitEncoder`] → a [`Bottleneck`] (token
//! ids and the decoder's input) → [`VitDecoder`] → u8 images, loaded from
//! [`TokenizerWeights`] (one safetensors file, `crate::weights`' tokenizer layout).
//!
//! ```no_run
//! use tessera::blocks::VitTokenizer;
//! use tessera::weights::{Checkpoint, TokenizerWeights};
//! use tessera::Device;
//!
//! let device = Device::best();
//! let weights = TokenizerWeights::from_checkpoint(Checkpoint::open("tokenizer.safetensors")?)?;
//! let tok = VitTokenizer::<f32>::load(&device, &weights)?;
//! let (batch, (h, w)) = (8, tok.image_size());
//! let mut ws = tok.workspace(&device, batch)?;
//! let images = device.upload(&vec![128u8; batch * h * w * 3])?; // [B, H, W, 3]
//! let coded = tok.encode(&device, images.as_view(), &mut ws)?;
//! let ids = coded.indices.as_ref().map(|i| i.download()).transpose()?; // [B·T, G]
//! let mut out = device.zeros::<u8>(batch * h * w * 3)?;
//! tok.decode(&device, coded.values.as_view(), &mut ws, &mut out)?;
//! let pixels = out.download()?;
//! # Ok::<(), tessera::Error>(())
//! ```

use crate::device::{BufferView, BufferViewMut, Device, DeviceBuffer, FloatElement};
use crate::error::{Error, Result};
use crate::kernels::binary_quant::BinaryQuantizer;
use crate::kernels::codebook::{Codebook, Metric, SearchOptions};
use crate::kernels::fsq::Fsq;
use crate::kernels::gemm::LinearOutput;
use crate::kernels::patchify::ImageNorm;
use crate::kernels::residual_vq::ResidualVq;
use crate::weights::{BottleneckWeights, HostTensor, TokenizerWeights};

use super::bottleneck::{Bottleneck, Bottlenecked, KlBottleneck, VqBottleneck};
use super::decoder::VitDecoder;
use super::upload::upload;
use super::vit::VitEncoder;
use super::workspace::Workspace;

/// Image channels (RGB).
const CHANNELS: usize = 3;

/// A ViT tokenizer on one device, in compute dtype T.
pub struct VitTokenizer<T: FloatElement> {
    kind: &'static str,
    encoder: VitEncoder<T>,
    bottleneck: Box<dyn Bottleneck<T>>,
    decoder: VitDecoder<T>,
    image_mean: Vec<f32>,
    image_std: Vec<f32>,
    encoder_width: usize,
    patch: usize,
    grid: (usize, usize),
    hash: u64,
}

/// The activations of one tokenizer at one batch size: the encoder's and decoder's
/// [`Workspace`]s and residual streams, and the encoder's output (the bottleneck's input).
/// Sized once by [`VitTokenizer::workspace`]; encode and decode allocate only their
/// outputs.
pub struct TokenizerWorkspace<T: FloatElement> {
    batch: usize,
    encoder: Workspace<T>,
    decoder: Workspace<T>,
    /// `[B, T, De]`: the encoder's residual stream.
    tokens: DeviceBuffer<T>,
    /// `[B·T, in_dim]`: the encoder head's output.
    latents: DeviceBuffer<T>,
    /// `[B, T, Dd]`: the decoder's residual stream.
    decoder_tokens: DeviceBuffer<T>,
}

impl<T: FloatElement> TokenizerWorkspace<T> {
    /// The images per encode or decode (B).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The encoder's output of the last [`VitTokenizer::encode`], `[B·T, in_dim]` (what the
    /// bottleneck read): for checking a quantizer's decision against its input.
    pub fn latents(&self) -> &DeviceBuffer<T> {
        &self.latents
    }

    /// Device bytes held.
    pub fn bytes(&self) -> usize {
        self.encoder.bytes()
            + self.decoder.bytes()
            + (self.tokens.len() + self.latents.len() + self.decoder_tokens.len()) * std::mem::size_of::<T>()
    }
}

fn mismatch(what: &str) -> Error {
    Error::invalid("weights", format!("the tokenizer's parts do not fit together: {what}"))
}

fn codebook<T: FloatElement>(device: &Device, t: &HostTensor, metric: Metric) -> Result<Codebook<T>> {
    let dim = t.shape.get(1).copied().unwrap_or(0);
    Codebook::new(device, upload(device, t)?, dim, metric)
}

fn load_bottleneck<T: FloatElement>(device: &Device, w: &BottleneckWeights) -> Result<Box<dyn Bottleneck<T>>> {
    // Encoding needs the ids and values only: no distances, no usage histogram.
    let options = SearchOptions { distances: false, histogram: false, ..SearchOptions::default() };
    Ok(match w {
        BottleneckWeights::Fsq { levels } => Box::new(Fsq::new(levels)?),
        BottleneckWeights::Vq { codebook: c } => {
            Box::new(VqBottleneck { codebook: codebook(device, c, Metric::SquaredL2)?, options })
        }
        BottleneckWeights::VqCosine { codebook: c } => {
            Box::new(VqBottleneck { codebook: codebook(device, c, Metric::Cosine)?, options })
        }
        BottleneckWeights::Lfq { dim, group_bits } => Box::new(BinaryQuantizer::lfq(*dim, *group_bits)?),
        BottleneckWeights::Bsq { dim, group_bits } => Box::new(BinaryQuantizer::bsq(*dim, *group_bits)?),
        BottleneckWeights::ResidualVq { stages } => Box::new(ResidualVq::new(
            stages.iter().map(|s| codebook(device, s, Metric::SquaredL2)).collect::<Result<Vec<_>>>()?,
        )?),
        BottleneckWeights::Kl { channels, mode } => Box::new(KlBottleneck { channels: *channels, mode: *mode }),
    })
}

impl<T: FloatElement + LinearOutput<T>> VitTokenizer<T> {
    /// Uploads the weights, converted to T. Weights read by
    /// [`TokenizerWeights::from_checkpoint`] fit together; weights built in memory are
    /// checked here too (`Error::InvalidArgument` naming `weights`: the encoder head's width
    /// against the bottleneck's input, the decoder's input against its output, the patch
    /// and the grid of both halves, 3 channels, 3 normalization values each).
    pub fn load(device: &Device, w: &TokenizerWeights) -> Result<Self> {
        let (ec, dc) = (&w.encoder.config, &w.decoder.config);
        let (b_in, b_out) = (w.bottleneck.in_dim(), w.bottleneck.out_dim());
        if w.encoder.head.is_none() {
            return Err(mismatch("the encoder has no head"));
        }
        if ec.out_dim != Some(b_in) {
            return Err(mismatch(&format!(
                "the encoder head gives {:?} values, the bottleneck reads {b_in}",
                ec.out_dim
            )));
        }
        if dc.latent_dim != b_out {
            return Err(mismatch(&format!("the decoder reads {}, the bottleneck gives {b_out}", dc.latent_dim)));
        }
        if ec.patch != dc.patch || ec.tokens != dc.grid.0 * dc.grid.1 {
            return Err(mismatch(&format!(
                "the encoder has patch {} and {} tokens, the decoder patch {} and grid {:?}",
                ec.patch, ec.tokens, dc.patch, dc.grid
            )));
        }
        if ec.in_channels != CHANNELS || dc.channels != CHANNELS {
            return Err(mismatch(&format!("{} and {} channels, not 3", ec.in_channels, dc.channels)));
        }
        if w.image_mean.len() != CHANNELS || w.image_std.len() != CHANNELS {
            return Err(mismatch("image_mean and image_std need one value per channel (3)"));
        }
        let bottleneck = load_bottleneck::<T>(device, &w.bottleneck)?;
        Ok(VitTokenizer {
            kind: match w.bottleneck {
                BottleneckWeights::Fsq { .. } => "vit-fsq",
                BottleneckWeights::Vq { .. } => "vit-vq",
                BottleneckWeights::VqCosine { .. } => "vit-vq-cosine",
                BottleneckWeights::Lfq { .. } => "vit-lfq",
                BottleneckWeights::Bsq { .. } => "vit-bsq",
                BottleneckWeights::ResidualVq { .. } => "vit-residual-vq",
                BottleneckWeights::Kl { .. } => "vit-kl",
            },
            encoder: VitEncoder::load(device, &w.encoder)?,
            bottleneck,
            decoder: VitDecoder::load(device, &w.decoder)?,
            image_mean: w.image_mean.clone(),
            image_std: w.image_std.clone(),
            encoder_width: ec.dim,
            patch: ec.patch,
            grid: dc.grid,
            hash: w.hash,
        })
    }

    /// `"vit-"` and the bottleneck's name: `vit-fsq`, `vit-vq`, `vit-vq-cosine`, `vit-lfq`,
    /// `vit-bsq`, `vit-residual-vq`, `vit-kl`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The weights' [`TokenizerWeights::hash`]: the identity a token file records.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The native resolution `(height, width)` = grid × patch: every image encoded or
    /// decoded has exactly this size.
    pub fn image_size(&self) -> (usize, usize) {
        (self.grid.0 * self.patch, self.grid.1 * self.patch)
    }

    /// The patch side p.
    pub fn patch(&self) -> usize {
        self.patch
    }

    /// Token rows and columns (token `t = row·cols + col`).
    pub fn grid(&self) -> (usize, usize) {
        self.grid
    }

    /// Tokens per image, T = rows·cols.
    pub fn tokens_per_image(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    /// Ids per token (FSQ and VQ 1, LFQ/BSQ their groups, residual VQ its stages; 0 for KL).
    pub fn indices_per_token(&self) -> usize {
        self.bottleneck.indices_per_token()
    }

    /// How many values each id takes; None for the continuous (KL) bottleneck.
    pub fn vocabulary(&self) -> Option<u64> {
        self.bottleneck.vocabulary()
    }

    /// Width of the decoder's input per token (the bottleneck's output): the channels a
    /// continuous tokenizer's values have.
    pub fn latent_channels(&self) -> usize {
        self.bottleneck.out_dim()
    }

    /// The bottleneck.
    pub fn bottleneck(&self) -> &dyn Bottleneck<T> {
        &*self.bottleneck
    }

    /// The image normalization both halves use.
    pub fn image_norm(&self) -> ImageNorm<'_> {
        ImageNorm { mean: &self.image_mean, std: &self.image_std }
    }

    /// A workspace for `batch` images per call.
    pub fn workspace(&self, device: &Device, batch: usize) -> Result<TokenizerWorkspace<T>> {
        let rows = batch
            .checked_mul(self.tokens_per_image())
            .ok_or_else(|| Error::invalid("batch", format!("{batch} images overflow")))?;
        let width = |d: usize| rows.checked_mul(d).ok_or_else(|| Error::invalid("batch", "sizes overflow"));
        Ok(TokenizerWorkspace {
            batch,
            encoder: self.encoder.workspace(device, batch)?,
            decoder: self.decoder.workspace(device, batch)?,
            tokens: DeviceBuffer::uninit(device, width(self.encoder_width)?)?,
            latents: DeviceBuffer::uninit(device, width(self.bottleneck.in_dim())?)?,
            decoder_tokens: DeviceBuffer::uninit(device, width(self.decoder.config().dim)?)?,
        })
    }

    fn image_len(&self, batch: usize) -> usize {
        let (h, w) = self.image_size();
        batch * h * w * CHANNELS
    }

    /// `images` u8 `[B, H, W, 3]` (NHWC, `(H, W)` = [`VitTokenizer::image_size`], B =
    /// `ws.batch()`) → the bottleneck's output for the B·T tokens (image-major, then token
    /// `row·cols + col`): `indices [B·T, indices_per_token]` (None for KL) and `values
    /// [B·T, latent_channels]`. Enqueues only (no host synchronization); download the
    /// outputs to wait. `Error::LengthMismatch` (argument `images`) for another length.
    pub fn encode(
        &self,
        device: &Device,
        images: BufferView<'_, u8>,
        ws: &mut TokenizerWorkspace<T>,
    ) -> Result<Bottlenecked<T>> {
        let expected = self.image_len(ws.batch);
        if images.len() != expected {
            return Err(Error::LengthMismatch { arg: "images", expected, actual: images.len() });
        }
        let norm = self.image_norm();
        let size = self.image_size();
        let TokenizerWorkspace { encoder, tokens, latents, .. } = ws;
        self.encoder.forward(device, images, &norm, size, encoder, tokens, &mut *latents)?;
        self.bottleneck.forward(device, latents.as_view())
    }

    /// The decoder's input for stored ids `[n, indices_per_token]`: the values
    /// [`VitTokenizer::encode`] gave with them ([`Bottleneck::decode`]: FSQ and VQ gather
    /// on the device; LFQ, BSQ and residual VQ download the ids, so they synchronize).
    /// `Error::Unsupported` for the continuous (KL) bottleneck.
    pub fn decode_ids(&self, device: &Device, ids: BufferView<'_, u32>) -> Result<DeviceBuffer<T>> {
        self.bottleneck.decode(device, ids)
    }

    /// `values [B·T, latent_channels]` (B = `ws.batch()`) → u8 images `[B, H, W, 3]` in
    /// `images`. Enqueues only; download `images` to wait. `Error::LengthMismatch`
    /// (arguments `values`, `images`) for other lengths.
    pub fn decode<'o>(
        &self,
        device: &Device,
        values: BufferView<'_, T>,
        ws: &mut TokenizerWorkspace<T>,
        images: impl Into<BufferViewMut<'o, u8>>,
    ) -> Result<()> {
        let images = images.into();
        let expected = ws.batch * self.tokens_per_image() * self.latent_channels();
        if values.len() != expected {
            return Err(Error::LengthMismatch { arg: "values", expected, actual: values.len() });
        }
        let expected = self.image_len(ws.batch);
        if images.len() != expected {
            return Err(Error::LengthMismatch { arg: "images", expected, actual: images.len() });
        }
        let norm = self.image_norm();
        let TokenizerWorkspace { decoder, decoder_tokens, .. } = ws;
        self.decoder.forward(device, values, &norm, decoder, decoder_tokens, images)
    }
}
