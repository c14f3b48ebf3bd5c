//! Why a filesystem operation failed, as the POSIX error the kernel passes to the caller.

/// A refused filesystem operation. Each variant is one `errno`; [`FsError::errno`] is what the
/// FUSE reply carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FsError {
    /// No inode with this number, or no entry with this name (`ENOENT`).
    #[error("no such file or directory")]
    NotFound,
    /// The name is taken (`EEXIST`).
    #[error("file exists")]
    Exists,
    /// A name longer than 255 bytes (`ENAMETOOLONG`).
    #[error("file name too long")]
    NameTooLong,
    /// A directory was expected (`ENOTDIR`).
    #[error("not a directory")]
    NotDir,
    /// A regular file was expected (`EISDIR`).
    #[error("is a directory")]
    IsDir,
    /// `rmdir`, or a rename over a directory, that still has entries (`ENOTEMPTY`).
    #[error("directory not empty")]
    NotEmpty,
    /// An open file handle this filesystem did not hand out (`EBADF`).
    #[error("bad file handle")]
    BadHandle,
    /// A write or size beyond [`crate::MAX_FILE_SIZE`] (`EFBIG`).
    #[error("file too large")]
    TooBig,
    /// A file type or flag this filesystem does not model: symlinks, hard links, device nodes,
    /// `RENAME_WHITEOUT` (`EPERM` or `EINVAL` as Linux would answer).
    #[error("operation not supported by lossyfs")]
    Unsupported,
    /// An argument the operation does not accept (`EINVAL`).
    #[error("invalid argument")]
    Invalid,
}

impl FsError {
    /// The error number the kernel returns to the process that made the system call.
    pub(crate) fn errno(self) -> fuser::Errno {
        match self {
            FsError::NotFound => fuser::Errno::ENOENT,
            FsError::Exists => fuser::Errno::EEXIST,
            FsError::NameTooLong => fuser::Errno::ENAMETOOLONG,
            FsError::NotDir => fuser::Errno::ENOTDIR,
            FsError::IsDir => fuser::Errno::EISDIR,
            FsError::NotEmpty => fuser::Errno::ENOTEMPTY,
            FsError::BadHandle => fuser::Errno::EBADF,
            FsError::TooBig => fuser::Errno::EFBIG,
            FsError::Unsupported => fuser::Errno::EPERM,
            FsError::Invalid => fuser::Errno::EINVAL,
        }
    }
}
