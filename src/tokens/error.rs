//! What reading or writing a token file can fail with.

/// A token file that cannot be read or written, with what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file ends before `what`: it was cut (a partial download or write).
    #[error("truncated token file: {what} needs {needed} bytes, the file has {available}")]
    Truncated {
        /// What could not be read.
        what: &'static str,
        /// Bytes it needs (counted from the start of the file).
        needed: u64,
        /// Bytes the file has.
        available: u64,
    },
    /// The file is longer than its header says.
    #[error("token file has {extra} bytes after its stated length of {stated}")]
    TrailingBytes {
        /// The length in the header.
        stated: u64,
        /// Bytes beyond it.
        extra: u64,
    },
    /// The file does not start with the token file's magic bytes.
    #[error("not a tessera token file (it starts with {found:02x?}, a token file with {expected:02x?})")]
    NotATokenFile {
        /// Up to 8 first bytes of the file.
        found: Vec<u8>,
        /// The magic.
        expected: [u8; 8],
    },
    /// A version this build cannot read.
    #[error("token file version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The file's version.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// The stored CRC-32 does not match the content: the file was corrupted.
    #[error("token file checksum mismatch: stored CRC-32 {stored:#010x}, content gives {computed:#010x} (the file is corrupted)")]
    ChecksumMismatch {
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the content.
        computed: u32,
    },
    /// A field holds a value the format does not allow.
    #[error("token file field `{field}`: {reason}")]
    Invalid {
        /// The field, as the format documentation names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokens were made by another tokenizer than the one given to decode them.
    #[error(
        "the token file was made by tokenizer {file_kind} (parameter hash {file_hash:016x}), \
         not by the given {expected_kind} (parameter hash {expected_hash:016x})"
    )]
    TokenizerMismatch {
        /// Kind in the file.
        file_kind: String,
        /// Parameter hash in the file.
        file_hash: u64,
        /// Kind of the tokenizer given.
        expected_kind: String,
        /// Its parameter hash.
        expected_hash: u64,
    },
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}
