//! The token file: the tokens of many images, made by one image tokenizer, in one
//! versioned, checksummed binary file (`tessera tokenize` writes it, `detokenize` reads it).
//!
//! # Layout, version 1
//!
//! Little-endian throughout. `⌈log2 K⌉` is the number of bits an id takes.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 54 53 52 54 4f 4b 0a` (`\x89TSRTOK\n`; the high byte and the newline catch 7-bit and text-mode transfers) |
//! | 8 | 2 | version, `1` |
//! | 10 | 2 | flags, `0` (reserved) |
//! | 12 | 8 | file length in bytes, including the checksum |
//! | 20 | 8 | tokenizer parameter hash |
//! | 28 | 1 | length n of the tokenizer kind, 1..=255 |
//! | 29 | n | tokenizer kind, UTF-8 (e.g. `patch-vq`, `vit-fsq`) |
//! | | 1 | payload: `0` ids, `1` continuous values |
//! | | 8 | vocabulary K: ids take values `0..K`, 1 ≤ K ≤ 2³² (ids); `0` (continuous) |
//! | | 4 | G, ids per token (groups, stages; ids), or C, values per token (continuous); ≥ 1 |
//! | | 1 | bits per value b: `max(1, ⌈log2 K⌉)` (ids) or `16` (continuous, IEEE f16) |
//! | | 4 | N, the number of images |
//! | | | N image records: name length m (2), name (m bytes, UTF-8), width, height (pixels of the original image), grid rows, grid columns (4 each, all ≥ 1) |
//! | | P | payload: the values of image 0, then image 1, …; within an image token by token in row-major grid order, a token's G ids (or C values) in order; bit-packed at b bits, least significant bit first (value i is bits `[i·b, (i+1)·b)` of the payload, bit j being bit `j % 8` of byte `j / 8`), the last byte's unused bits zero. P = ⌈(Σ rows·cols)·G·b / 8⌉ |
//! | len − 4 | 4 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it |
//!
//! A vocabulary of 1 is stored at 1 bit per id (not 0), so that a file's length always
//! bounds the number of tokens it claims. All values are u32: K = 2³² needs 32 bits.
//!
//! # Reading
//!
//! [`TokenFile::from_bytes`] checks, in order: the length of the fixed header, the magic,
//! the version, the stated length against the actual one ([`TokenFileError::Truncated`],
//! [`TokenFileError::TrailingBytes`]), the checksum, then every field, with every count
//! checked against the bytes that remain before anything is allocated: reading allocates at
//! most a small multiple of the file's size, whatever the file says.

mod bitpack;
mod error;
mod format;

pub use error::TokenFileError;

/// Which tokenizer made the tokens: the token file's guard against decoding them with
/// another one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizerIdentity {
    /// Kind, e.g. `patch-vq` (1 to 255 bytes of UTF-8).
    pub kind: String,
    /// A hash of the tokenizer's parameters (e.g. `weights::Checkpoint::parameter_hash`).
    pub hash: u64,
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPayload {
    /// `ids_per_token` ids per token, each in `0..vocabulary` (1 ≤ vocabulary ≤ 2³²).
    Ids {
        /// K.
        vocabulary: u64,
        /// G (≥ 1): group-wise LFQ groups, residual VQ stages, else 1.
        ids_per_token: u32,
    },
    /// `channels` continuous values per token (a KL bottleneck), stored as f16.
    Continuous {
        /// C (≥ 1).
        channels: u32,
    },
}

/// The tokens of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTokens {
    /// The image's name (its file stem; names the decoded image), at most 65535 bytes.
    pub name: String,
    /// Width of the original image in pixels (≥ 1).
    pub width: u32,
    /// Height of the original image in pixels (≥ 1).
    pub height: u32,
    /// Token grid rows (≥ 1).
    pub grid_rows: u32,
    /// Token grid columns (≥ 1).
    pub grid_cols: u32,
    /// `[grid_rows·grid_cols, G]` row-major ids (payload `Ids`; empty otherwise).
    pub ids: Vec<u32>,
    /// `[grid_rows·grid_cols, C]` row-major values (payload `Continuous`; empty otherwise).
    pub values: Vec<half::f16>,
}

/// A token file in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenFile {
    /// The tokenizer that made the tokens.
    pub tokenizer: TokenizerIdentity,
    /// What a token is.
    pub payload: TokenPayload,
    /// The images, in order.
    pub images: Vec<ImageTokens>,
}

/// The version this build reads and writes.
pub const TOKEN_FILE_VERSION: u16 = 1;
/// The file's first 8 bytes.
pub const TOKEN_FILE_MAGIC: [u8; 8] = *b"\x89TSRTOK\n";

impl TokenFile {
    /// Bits each stored value takes: `max(1, ⌈log2 K⌉)` for ids, 16 for continuous values.
    pub fn bits_per_id(&self) -> u32 {
        format::bits_per_value(self.payload)
    }

    /// Bits of the payload: tokens × values per token × [`TokenFile::bits_per_id`].
    pub fn payload_bits(&self) -> u64 {
        let per_token = match self.payload {
            TokenPayload::Ids { ids_per_token, .. } => ids_per_token as u64,
            TokenPayload::Continuous { channels } => channels as u64,
        };
        let tokens: u64 = self.images.iter().map(|i| i.grid_rows as u64 * i.grid_cols as u64).sum();
        tokens.saturating_mul(per_token).saturating_mul(self.bits_per_id() as u64)
    }

    /// `Ok` when `expected` made these tokens, else [`TokenFileError::TokenizerMismatch`].
    pub fn check_tokenizer(&self, expected: &TokenizerIdentity) -> crate::Result<()> {
        if self.tokenizer == *expected {
            return Ok(());
        }
        Err(TokenFileError::TokenizerMismatch {
            file_kind: self.tokenizer.kind.clone(),
            file_hash: self.tokenizer.hash,
            expected_kind: expected.kind.clone(),
            expected_hash: expected.hash,
        }
        .into())
    }

    /// The file's bytes. Validates everything [`TokenFile::from_bytes`] checks (so it never
    /// writes a file it could not read back): an id ≥ K, a grid of 0, ids or values that do
    /// not fill the grid, a name or kind too long ([`TokenFileError::Invalid`]).
    pub fn to_bytes(&self) -> crate::Result<Vec<u8>> {
        Ok(format::encode(self)?)
    }

    /// Parses a token file (see the module documentation for what is checked).
    pub fn from_bytes(bytes: &[u8]) -> crate::Result<TokenFile> {
        Ok(format::decode(bytes)?)
    }

    /// Writes the file at `path`.
    pub fn write(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes)
            .map_err(|source| TokenFileError::Io { path: path.display().to_string(), source }.into())
    }

    /// Reads the file at `path`.
    pub fn read(path: impl AsRef<std::path::Path>) -> crate::Result<TokenFile> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| TokenFileError::Io { path: path.display().to_string(), source })?;
        TokenFile::from_bytes(&bytes)
    }
}
