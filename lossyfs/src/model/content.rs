//! File bytes and attributes: read, write, truncate, fallocate, chmod/chown/utimes, and the
//! file `fsync` that makes the bytes durable.

use std::time::SystemTime;

use super::{Body, Model, MAX_FILE_SIZE};
use crate::FsError;

/// `end` as an in-memory length, if it is within [`MAX_FILE_SIZE`].
fn checked_len(end: u64) -> Result<usize, FsError> {
    if end > MAX_FILE_SIZE {
        return Err(FsError::TooBig);
    }
    usize::try_from(end).map_err(|_| FsError::TooBig)
}

impl Model {
    /// The current bytes of regular file `ino`.
    fn current_mut(&mut self, ino: u64) -> Result<&mut Vec<u8>, FsError> {
        match &mut self.inode_mut(ino)?.body {
            Body::File { current, .. } => Ok(current),
            Body::Dir { .. } => Err(FsError::IsDir),
        }
    }

    /// Up to `size` bytes from `offset`; fewer at the end of the file, none past it.
    pub(crate) fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], FsError> {
        let Body::File { current, .. } = &self.inode(ino)?.body else {
            return Err(FsError::IsDir);
        };
        let start = usize::try_from(offset).map_or(current.len(), |offset| offset.min(current.len()));
        let end = start.saturating_add(size as usize).min(current.len());
        Ok(&current[start..end])
    }

    /// `pwrite` through handle `fh` at `offset` (at the end of the file instead for an
    /// `O_APPEND` handle). A gap between the old end and `offset` reads as zeros. Only the
    /// current contents change, unless the handle was opened `O_SYNC`/`O_DSYNC`.
    pub(crate) fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let handle = *self.files.get(&fh).ok_or(FsError::BadHandle)?;
        let written = u32::try_from(data.len()).map_err(|_| FsError::Invalid)?;
        let current = self.current_mut(handle.ino)?;
        let start = if handle.append { current.len() as u64 } else { offset };
        let end = checked_len(start.saturating_add(data.len() as u64))?;
        let start = end - data.len();
        if current.len() < end {
            current.resize(end, 0);
        }
        current[start..end].copy_from_slice(data);
        self.inode_mut(handle.ino)?.meta.touch();
        if handle.sync {
            self.sync_file(handle.ino)?;
        }
        self.stats.writes += 1;
        self.stats.bytes_written += u64::from(written);
        Ok(written)
    }

    /// `truncate`/`ftruncate`: shorten, or extend with zeros (current contents only).
    pub(crate) fn set_size(&mut self, ino: u64, size: u64) -> Result<(), FsError> {
        let size = checked_len(size)?;
        self.current_mut(ino)?.resize(size, 0);
        self.inode_mut(ino)?.meta.touch();
        Ok(())
    }

    /// `fallocate`: mode 0 extends the file with zeros to `offset + length` if it is shorter,
    /// `FALLOC_FL_KEEP_SIZE` only checks the range (memory is not reserved ahead); other modes
    /// (punching holes, collapsing ranges) are not modelled.
    pub(crate) fn fallocate(&mut self, ino: u64, offset: u64, length: u64, mode: i32) -> Result<(), FsError> {
        let end = checked_len(offset.saturating_add(length))?;
        match mode {
            0 => {
                let current = self.current_mut(ino)?;
                if current.len() < end {
                    current.resize(end, 0);
                    self.inode_mut(ino)?.meta.touch();
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => self.current_mut(ino).map(|_| ()),
            _ => Err(FsError::Unsupported),
        }
    }

    /// `chmod`: the permission bits of `mode` (`0o7777`).
    pub(crate) fn set_perm(&mut self, ino: u64, mode: u32) -> Result<(), FsError> {
        let meta = &mut self.inode_mut(ino)?.meta;
        // The mask keeps 12 bits, so the cast is lossless.
        meta.perm = (mode & 0o7777) as u16;
        meta.ctime = SystemTime::now();
        Ok(())
    }

    /// `chown`: either or both of owner and group.
    pub(crate) fn set_owner(&mut self, ino: u64, uid: Option<u32>, gid: Option<u32>) -> Result<(), FsError> {
        let meta = &mut self.inode_mut(ino)?.meta;
        meta.uid = uid.unwrap_or(meta.uid);
        meta.gid = gid.unwrap_or(meta.gid);
        meta.ctime = SystemTime::now();
        Ok(())
    }

    /// `utimensat`: either or both of access and modification time.
    pub(crate) fn set_times(&mut self, ino: u64, atime: Option<SystemTime>, mtime: Option<SystemTime>) -> Result<(), FsError> {
        let meta = &mut self.inode_mut(ino)?.meta;
        meta.atime = atime.unwrap_or(meta.atime);
        meta.mtime = mtime.unwrap_or(meta.mtime);
        meta.ctime = SystemTime::now();
        Ok(())
    }

    /// `fsync` (`datasync` false) or `fdatasync` (true) of a regular file: its current bytes
    /// become its durable bytes. The two are the same here because size is part of the bytes
    /// and no other attribute is rolled back. On a directory it is `fsyncdir`.
    pub(crate) fn fsync(&mut self, ino: u64, datasync: bool) -> Result<(), FsError> {
        if let Body::Dir { .. } = self.inode(ino)?.body {
            return self.fsyncdir(ino);
        }
        self.sync_file(ino)?;
        if datasync {
            self.stats.fdatasyncs += 1;
        } else {
            self.stats.fsyncs += 1;
        }
        Ok(())
    }

    fn sync_file(&mut self, ino: u64) -> Result<(), FsError> {
        match &mut self.inode_mut(ino)?.body {
            Body::File { current, durable } => {
                durable.clone_from(current);
                Ok(())
            }
            Body::Dir { .. } => Err(FsError::IsDir),
        }
    }
}
