//! The command line's error type: tessera's errors plus what only the command line does
//! (files, images, argument combinations that clap does not check).

/// Everything a `tessera` subcommand can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A kernel or device call failed.
    #[error(transparent)]
    Tessera(#[from] tessera::Error),

    /// A command-line argument is out of range or inconsistent with another.
    #[error("invalid argument `{arg}`: {reason}")]
    Usage { arg: &'static str, reason: String },

    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Decoding or encoding an image.
    #[error("{path}: {message}")]
    Image { path: String, message: String },
}

impl CliError {
    pub(crate) fn invalid(arg: &'static str, reason: impl Into<String>) -> Self {
        CliError::Usage { arg, reason: reason.into() }
    }
}

/// Result with [`CliError`].
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;
