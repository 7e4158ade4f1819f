//! The token file (`tessera::tokens`): bit-exact round trips over random grids and
//! vocabularies, its size, and typed errors for every truncation, corruption, foreign or
//! future file, crafted counts, and a mismatched tokenizer.

use half::f16;
use proptest::prelude::*;
use tessera::tokens::{ImageTokens, TokenFile, TokenFileError, TokenPayload, TokenizerIdentity};
use tessera::Error;

fn identity() -> TokenizerIdentity {
    TokenizerIdentity { kind: "patch-vq".into(), hash: 0x0123_4567_89ab_cdef }
}

fn ids_file(vocabulary: u64, g: u32, grids: &[(u32, u32)], seed: u64) -> TokenFile {
    let mut state = seed | 1;
    let images = grids
        .iter()
        .enumerate()
        .map(|(i, &(r, c))| {
            let ids = (0..r as u64 * c as u64 * g as u64)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 16) % vocabulary) as u32
                })
                .collect();
            ImageTokens {
                name: format!("img{i}"),
                width: c * 4 - (i as u32 % 3),
                height: r * 4,
                grid_rows: r,
                grid_cols: c,
                ids,
                values: Vec::new(),
            }
        })
        .collect();
    TokenFile { tokenizer: identity(), payload: TokenPayload::Ids { vocabulary, ids_per_token: g }, images }
}

fn token_error(bytes: &[u8]) -> TokenFileError {
    match TokenFile::from_bytes(bytes) {
        Err(Error::TokenFile(e)) => e,
        other => panic!("expected a token file error, got {other:?}"),
    }
}

/// Rewrites the CRC of `bytes` after an edit.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ids_round_trip_bit_exactly(
        vocabulary in prop_oneof![Just(1u64), Just(2), Just(4096), Just(4097), Just(65535), Just(1 << 32), 1u64..=(1 << 32)],
        g in 1u32..=4,
        grids in proptest::collection::vec((1u32..6, 1u32..6), 0..5),
        seed in any::<u64>(),
    ) {
        let file = ids_file(vocabulary, g, &grids, seed);
        let bytes = file.to_bytes().unwrap();
        prop_assert_eq!(TokenFile::from_bytes(&bytes).unwrap(), file);
    }

    #[test]
    fn continuous_values_round_trip_bit_exactly(
        channels in 1u32..=8,
        grids in proptest::collection::vec((1u32..5, 1u32..5), 1..4),
        bits in proptest::collection::vec(any::<u16>(), 0..1000),
    ) {
        let mut k = 0;
        let images: Vec<ImageTokens> = grids.iter().map(|&(r, c)| {
            let n = (r * c * channels) as usize;
            let values = (0..n).map(|_| { k += 1; f16::from_bits(bits.get(k % bits.len().max(1)).copied().unwrap_or(k as u16)) }).collect();
            ImageTokens { name: "x".into(), width: 3, height: 5, grid_rows: r, grid_cols: c, ids: Vec::new(), values }
        }).collect();
        let file = TokenFile { tokenizer: identity(), payload: TokenPayload::Continuous { channels }, images };
        let back = TokenFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
        // Compare bits: NaN patterns must survive too.
        let bits_of = |f: &TokenFile| f.images.iter().flat_map(|i| i.values.iter().map(|v| v.to_bits())).collect::<Vec<_>>();
        prop_assert_eq!(bits_of(&back), bits_of(&file));
        prop_assert_eq!(back.images.len(), file.images.len());
    }

    #[test]
    fn any_flipped_byte_is_an_error(position in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let file = ids_file(4096, 2, &[(3, 5), (2, 2)], 7);
        let mut bytes = file.to_bytes().unwrap();
        let at = position.index(bytes.len());
        bytes[at] ^= mask;
        prop_assert!(TokenFile::from_bytes(&bytes).is_err(), "byte {at} ^ {mask:#x} was accepted");
    }
}

#[test]
fn ids_take_ceil_log2_k_bits() {
    // 1000 ids of K = 4096: 12 bits each, 1500 bytes of payload.
    let file = ids_file(4096, 1, &[(10, 100)], 1);
    let bytes = file.to_bytes().unwrap();
    let header = 8 + 2 + 2 + 8 + 8 + 1 + "patch-vq".len() + 1 + 8 + 4 + 1 + 4;
    let record = 2 + "img0".len() + 16;
    assert_eq!(bytes.len(), header + record + 1500 + 4);
    assert_eq!(file.bits_per_id(), 12);
    assert_eq!(file.payload_bits(), 12_000);
    for (k, bits) in [(1u64, 1), (2, 1), (3, 2), (4096, 12), (4097, 13), (1 << 32, 32)] {
        let f = TokenFile {
            tokenizer: identity(),
            payload: TokenPayload::Ids { vocabulary: k, ids_per_token: 1 },
            images: vec![],
        };
        assert_eq!(f.bits_per_id(), bits, "K = {k}");
    }
}

#[test]
fn every_truncation_is_named() {
    let bytes = ids_file(300, 3, &[(2, 3), (1, 1)], 3).to_bytes().unwrap();
    for len in 0..bytes.len() {
        match token_error(&bytes[..len]) {
            TokenFileError::Truncated { available, .. } => assert_eq!(available, len as u64),
            e => panic!("cut at {len}: {e}"),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(token_error(&longer), TokenFileError::TrailingBytes { extra: 1, .. }));
}

#[test]
fn foreign_future_and_corrupted_files_are_named() {
    let bytes = ids_file(16, 1, &[(2, 2)], 5).to_bytes().unwrap();
    let e = token_error(b"\x89PNG\r\n\x1a\n0000000000000000000000000000000000");
    assert!(matches!(e, TokenFileError::NotATokenFile { .. }), "{e}");
    assert!(e.to_string().contains("not a tessera token file"));

    let mut future = bytes.clone();
    future[8] = 2;
    reseal(&mut future);
    assert!(matches!(token_error(&future), TokenFileError::UnsupportedVersion { found: 2, supported: 1 }));

    let mut corrupt = bytes.clone();
    let n = corrupt.len();
    corrupt[n - 6] ^= 1;
    let e = token_error(&corrupt);
    assert!(matches!(e, TokenFileError::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains("checksum"));
}

#[test]
fn crafted_counts_with_a_valid_checksum_allocate_nothing() {
    let bytes = ids_file(16, 1, &[(2, 2)], 5).to_bytes().unwrap();
    let kind_end = 29 + "patch-vq".len();
    let count_at = kind_end + 1 + 8 + 4 + 1;
    // 2^32 − 1 images in a 70-byte file.
    let mut many = bytes.clone();
    many[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut many);
    assert!(matches!(token_error(&many), TokenFileError::Invalid { field: "images", .. }));
    // A grid of 2^32−1 × 2^32−1 tokens.
    let mut huge = bytes.clone();
    let grid_at = count_at + 4 + 2 + "img0".len() + 8;
    huge[grid_at..grid_at + 8].copy_from_slice(&[0xff; 8]);
    reseal(&mut huge);
    assert!(matches!(token_error(&huge), TokenFileError::Invalid { field: "grid" | "payload", .. }));
    // A name longer than the file.
    let mut name = bytes.clone();
    name[count_at + 4..count_at + 6].copy_from_slice(&u16::MAX.to_le_bytes());
    reseal(&mut name);
    assert!(matches!(token_error(&name), TokenFileError::Invalid { field: "name", .. }));
    // An id ≥ K behind a valid checksum: K = 16 lowered to 3.
    let mut small_k = bytes.clone();
    small_k[kind_end + 1..kind_end + 9].copy_from_slice(&3u64.to_le_bytes());
    small_k[count_at - 1] = 2;
    reseal(&mut small_k);
    assert!(TokenFile::from_bytes(&small_k).is_err());
}

#[test]
fn invalid_contents_are_not_written() {
    let mut file = ids_file(16, 1, &[(2, 2)], 5);
    file.images[0].ids[3] = 16;
    assert!(matches!(file.to_bytes(), Err(Error::TokenFile(TokenFileError::Invalid { field: "ids", .. }))));
    let mut file = ids_file(16, 1, &[(2, 2)], 5);
    file.images[0].ids.pop();
    assert!(matches!(file.to_bytes(), Err(Error::TokenFile(TokenFileError::Invalid { field: "ids", .. }))));
    let mut file = ids_file(16, 1, &[(2, 2)], 5);
    file.payload = TokenPayload::Ids { vocabulary: (1 << 32) + 1, ids_per_token: 1 };
    assert!(matches!(file.to_bytes(), Err(Error::TokenFile(TokenFileError::Invalid { field: "vocabulary", .. }))));
}

#[test]
fn another_tokenizer_is_refused_by_name() {
    let file = ids_file(16, 1, &[(1, 1)], 5);
    assert!(file.check_tokenizer(&identity()).is_ok());
    let other = TokenizerIdentity { kind: "vit-fsq".into(), hash: 42 };
    let e = file.check_tokenizer(&other).unwrap_err().to_string();
    assert!(e.contains("patch-vq") && e.contains("vit-fsq") && e.contains("0123456789abcdef"), "{e}");
}
