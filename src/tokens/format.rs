//! Encoding and decoding of the layout documented in the module above.

use super::bitpack::{pack, packed_len, unpack};
use super::{ImageTokens, TokenFile, TokenFileError, TokenPayload, TokenizerIdentity};
use super::{TOKEN_FILE_MAGIC, TOKEN_FILE_VERSION};

type Result<T> = std::result::Result<T, TokenFileError>;

/// Bytes before the tokenizer kind: magic, version, flags, length, hash, kind length.
const FIXED: usize = 29;
/// Bytes of an image record besides its name.
const RECORD: usize = 2 + 16;
const CRC: usize = 4;

fn invalid(field: &'static str, reason: impl Into<String>) -> TokenFileError {
    TokenFileError::Invalid { field, reason: reason.into() }
}

pub(super) fn bits_per_value(payload: TokenPayload) -> u32 {
    match payload {
        // ⌈log2 K⌉ = bits of K − 1, at least 1.
        TokenPayload::Ids { vocabulary, .. } => (64 - vocabulary.saturating_sub(1).leading_zeros()).max(1),
        TokenPayload::Continuous { .. } => 16,
    }
}

fn check_payload(payload: TokenPayload) -> Result<u32> {
    match payload {
        TokenPayload::Ids { vocabulary, ids_per_token } => {
            if vocabulary == 0 || vocabulary > 1 << 32 {
                return Err(invalid("vocabulary", format!("K = {vocabulary}: must be in 1..=2^32")));
            }
            if ids_per_token == 0 {
                return Err(invalid("ids per token", "G = 0: a token has at least one id"));
            }
            Ok(ids_per_token)
        }
        TokenPayload::Continuous { channels } => {
            if channels == 0 {
                return Err(invalid("channels", "C = 0: a token has at least one value"));
            }
            Ok(channels)
        }
    }
}

fn check_image(image: &ImageTokens) -> Result<u64> {
    if image.name.len() > u16::MAX as usize {
        return Err(invalid("name", format!("{} bytes: at most 65535", image.name.len())));
    }
    if image.width == 0 || image.height == 0 {
        return Err(invalid("size", format!("{}: {}×{} pixels", image.name, image.width, image.height)));
    }
    if image.grid_rows == 0 || image.grid_cols == 0 {
        return Err(invalid("grid", format!("{}: {}×{} tokens", image.name, image.grid_rows, image.grid_cols)));
    }
    Ok(image.grid_rows as u64 * image.grid_cols as u64)
}

pub(super) fn encode(file: &TokenFile) -> Result<Vec<u8>> {
    let kind = file.tokenizer.kind.as_bytes();
    if kind.is_empty() || kind.len() > 255 {
        return Err(invalid("tokenizer kind", format!("{} bytes: must be 1..=255", kind.len())));
    }
    let per_token = check_payload(file.payload)? as u64;
    let bits = bits_per_value(file.payload);
    let images = u32::try_from(file.images.len())
        .map_err(|_| invalid("images", format!("{} images: at most 2^32 − 1", file.images.len())))?;
    let mut values = 0u64;
    for image in &file.images {
        let tokens = check_image(image)?;
        let expected = tokens * per_token;
        let (given, what) = match file.payload {
            TokenPayload::Ids { vocabulary, .. } => {
                if let Some((i, id)) = image.ids.iter().enumerate().find(|(_, &id)| id as u64 >= vocabulary) {
                    return Err(invalid("ids", format!("{}: id {i} is {id}, not below K = {vocabulary}", image.name)));
                }
                if !image.values.is_empty() {
                    return Err(invalid("values", format!("{}: an id payload holds no values", image.name)));
                }
                (image.ids.len() as u64, "ids")
            }
            TokenPayload::Continuous { .. } => {
                if !image.ids.is_empty() {
                    return Err(invalid("ids", format!("{}: a continuous payload holds no ids", image.name)));
                }
                (image.values.len() as u64, "values")
            }
        };
        if given != expected {
            return Err(invalid(
                what,
                format!(
                    "{}: {given} {what} for {}×{} tokens of {per_token}, expected {expected}",
                    image.name, image.grid_rows, image.grid_cols
                ),
            ));
        }
        values += expected;
    }
    let payload = packed_len(values, bits).ok_or_else(|| invalid("payload", "too many values"))?;
    let names: usize = file.images.iter().map(|i| i.name.len()).sum();
    let len = (FIXED + kind.len() + 1 + 8 + 4 + 1 + 4 + RECORD * file.images.len() + names + CRC) as u64 + payload;

    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&TOKEN_FILE_MAGIC);
    out.extend_from_slice(&TOKEN_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&file.tokenizer.hash.to_le_bytes());
    out.push(kind.len() as u8);
    out.extend_from_slice(kind);
    let (tag, vocabulary) = match file.payload {
        TokenPayload::Ids { vocabulary, .. } => (0u8, vocabulary),
        TokenPayload::Continuous { .. } => (1u8, 0),
    };
    out.push(tag);
    out.extend_from_slice(&vocabulary.to_le_bytes());
    out.extend_from_slice(&(per_token as u32).to_le_bytes());
    out.push(bits as u8);
    out.extend_from_slice(&images.to_le_bytes());
    for image in &file.images {
        out.extend_from_slice(&(image.name.len() as u16).to_le_bytes());
        out.extend_from_slice(image.name.as_bytes());
        for v in [image.width, image.height, image.grid_rows, image.grid_cols] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    match file.payload {
        TokenPayload::Ids { .. } => pack(file.images.iter().flat_map(|i| i.ids.iter().copied()), bits, &mut out),
        TokenPayload::Continuous { .. } => {
            pack(file.images.iter().flat_map(|i| i.values.iter().map(|v| v.to_bits() as u32)), bits, &mut out)
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() as u64, len);
    Ok(out)
}

/// A cursor over the content (the bytes before the CRC) that names what it cannot read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The whole file's length, for error messages.
    file_len: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        match self.at.checked_add(n).filter(|&end| end <= self.bytes.len()) {
            Some(end) => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            // The stated length matched and the CRC too: the fields claim more than there is.
            None => Err(invalid(
                what,
                format!(
                    "needs {n} bytes at offset {}, but the content ends at {} (of {} bytes)",
                    self.at,
                    self.bytes.len(),
                    self.file_len
                ),
            )),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn utf8(&mut self, n: usize, what: &'static str) -> Result<String> {
        let raw = self.take(n, what)?;
        String::from_utf8(raw.to_vec()).map_err(|e| invalid(what, format!("not UTF-8: {e}")))
    }
}

fn header_checks(bytes: &[u8]) -> Result<()> {
    let available = bytes.len() as u64;
    let prefix = &bytes[..bytes.len().min(8)];
    if prefix != &TOKEN_FILE_MAGIC[..prefix.len()] {
        return Err(TokenFileError::NotATokenFile { found: prefix.to_vec(), expected: TOKEN_FILE_MAGIC });
    }
    if bytes.len() < 20 {
        return Err(TokenFileError::Truncated { what: "header", needed: 20, available });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != TOKEN_FILE_VERSION {
        return Err(TokenFileError::UnsupportedVersion { found: version, supported: TOKEN_FILE_VERSION });
    }
    let stated = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    if available < stated {
        return Err(TokenFileError::Truncated { what: "file (its stated length)", needed: stated, available });
    }
    if available > stated {
        if stated < (FIXED + CRC) as u64 {
            return Err(invalid("file length", format!("{stated} bytes is shorter than any token file")));
        }
        return Err(TokenFileError::TrailingBytes { stated, extra: available - stated });
    }
    if bytes.len() < FIXED + CRC {
        return Err(invalid("file length", format!("{stated} bytes is shorter than any token file")));
    }
    let (content, crc) = bytes.split_at(bytes.len() - CRC);
    let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    let computed = crc32fast::hash(content);
    if stored != computed {
        return Err(TokenFileError::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

pub(super) fn decode(bytes: &[u8]) -> Result<TokenFile> {
    header_checks(bytes)?;
    let mut r = Reader { bytes: &bytes[..bytes.len() - CRC], at: 0, file_len: bytes.len() as u64 };
    r.take(8, "magic")?;
    r.u16("version")?;
    let flags = r.u16("flags")?;
    if flags != 0 {
        return Err(invalid("flags", format!("{flags:#06x}: version 1 defines none")));
    }
    r.u64("file length")?;
    let hash = r.u64("tokenizer hash")?;
    let kind_len = r.u8("tokenizer kind length")? as usize;
    if kind_len == 0 {
        return Err(invalid("tokenizer kind", "empty"));
    }
    let kind = r.utf8(kind_len, "tokenizer kind")?;
    let tag = r.u8("payload")?;
    let vocabulary = r.u64("vocabulary")?;
    let per_token = r.u32("ids per token")?;
    let payload = match tag {
        0 => TokenPayload::Ids { vocabulary, ids_per_token: per_token },
        1 if vocabulary == 0 => TokenPayload::Continuous { channels: per_token },
        1 => return Err(invalid("vocabulary", format!("{vocabulary} for a continuous payload (must be 0)"))),
        t => return Err(invalid("payload", format!("kind {t}: 0 (ids) or 1 (continuous)"))),
    };
    check_payload(payload)?;
    let bits = r.u8("bits per value")? as u32;
    if bits != bits_per_value(payload) {
        return Err(invalid("bits per value", format!("{bits}, but the payload needs {}", bits_per_value(payload))));
    }
    let count = r.u32("images")? as usize;
    // Every record takes at least RECORD bytes: a count the content cannot hold is refused
    // before anything is allocated.
    if count > r.remaining() / RECORD {
        return Err(invalid(
            "images",
            format!("{count} image records cannot fit in the {} bytes that remain", r.remaining()),
        ));
    }
    let mut records = Vec::with_capacity(count);
    let mut values = 0u64;
    for _ in 0..count {
        let name_len = r.u16("name length")? as usize;
        let name = r.utf8(name_len, "name")?;
        let (width, height) = (r.u32("width")?, r.u32("height")?);
        let (grid_rows, grid_cols) = (r.u32("grid rows")?, r.u32("grid columns")?);
        let image = ImageTokens { name, width, height, grid_rows, grid_cols, ids: Vec::new(), values: Vec::new() };
        values = check_image(&image)?
            .checked_mul(per_token as u64)
            .and_then(|n| n.checked_add(values))
            .ok_or_else(|| invalid("grid", "the token count overflows"))?;
        records.push(image);
    }
    let payload_len = packed_len(values, bits).ok_or_else(|| invalid("grid", "the payload size overflows"))?;
    if payload_len != r.remaining() as u64 {
        return Err(invalid(
            "payload",
            format!(
                "{values} values of {bits} bits need {payload_len} bytes, the file has {} before its checksum",
                r.remaining()
            ),
        ));
    }
    // `values` ≤ 8·remaining / bits here, so the allocation is bounded by the file's size.
    let packed = r.take(payload_len as usize, "payload")?;
    let unpacked = unpack(packed, bits, values as usize);
    let mut at = 0usize;
    for image in &mut records {
        let n = image.grid_rows as usize * image.grid_cols as usize * per_token as usize;
        let part = &unpacked[at..at + n];
        match payload {
            TokenPayload::Ids { vocabulary: k, .. } => {
                if let Some((i, id)) = part.iter().enumerate().find(|(_, &id)| id as u64 >= k) {
                    return Err(invalid("ids", format!("{}: id {i} is {id}, not below K = {k}", image.name)));
                }
                image.ids = part.to_vec();
            }
            TokenPayload::Continuous { .. } => {
                image.values = part.iter().map(|&v| half::f16::from_bits(v as u16)).collect();
            }
        }
        at += n;
    }
    let unused = (payload_len * 8 - values * bits as u64) as u32;
    if unused > 0 && packed.last().is_some_and(|&b| b >> (8 - unused) != 0) {
        return Err(invalid("payload", "the last byte's unused bits are not zero"));
    }
    Ok(TokenFile { tokenizer: TokenizerIdentity { kind, hash }, payload, images: records })
}
