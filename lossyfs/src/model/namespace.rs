//! Directory entries: create, mkdir, unlink, rmdir, rename and directory listings. Each change
//! touches the directory's *current* entries only; `fsyncdir` (in `power.rs`) makes them
//! durable.

use std::ffi::OsStr;

use super::{Attr, Body, DirEntry, Entries, Inode, Kind, Meta, Model, NAME_MAX};
use crate::FsError;

/// Who creates an inode and with which `mode` and `umask` (as `open(2)`/`mkdir(2)` pass them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Creator {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub umask: u32,
}

impl Creator {
    /// The permission bits a new inode gets: `mode & !umask`.
    fn perm(self) -> u16 {
        // The mask keeps 12 bits, so the cast is lossless.
        (self.mode & !self.umask & 0o7777) as u16
    }
}

fn check_name(name: &OsStr) -> Result<(), FsError> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.as_encoded_bytes().contains(&b'/') {
        return Err(FsError::Invalid);
    }
    Ok(())
}

impl Model {
    /// Add a new inode named `name` to directory `parent` (current entries only).
    fn link_new(&mut self, parent: u64, name: &OsStr, creator: Creator, body: Body) -> Result<Attr, FsError> {
        check_name(name)?;
        if self.child(parent, name)?.is_some() {
            return Err(FsError::Exists);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode { meta: Meta::new(creator.perm(), creator.uid, creator.gid), body });
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.inode_mut(parent)?.meta.touch();
        self.attr(ino)
    }

    /// A new, empty regular file (`mknod` of `S_IFREG`, or `create` below).
    pub(crate) fn create_file(&mut self, parent: u64, name: &OsStr, creator: Creator) -> Result<Attr, FsError> {
        self.link_new(parent, name, creator, Body::File { current: Vec::new(), durable: Vec::new() })
    }

    /// `open(2)` with `O_CREAT`: create the file, or open the existing one unless `O_EXCL` is
    /// set (the kernel normally sends an existing name to `open`, not here, but a concurrent
    /// creator can win the race). Returns the attributes and a file handle.
    pub(crate) fn create_open(&mut self, parent: u64, name: &OsStr, creator: Creator, flags: i32) -> Result<(Attr, u64), FsError> {
        let attr = match self.child(parent, name)? {
            Some(_) if flags & libc::O_EXCL != 0 => return Err(FsError::Exists),
            Some(ino) => {
                if flags & libc::O_TRUNC != 0 {
                    self.set_size(ino, 0)?;
                }
                self.attr(ino)?
            }
            None => self.create_file(parent, name, creator)?,
        };
        let fh = self.open(attr.ino, flags)?;
        Ok((attr, fh))
    }

    pub(crate) fn mkdir(&mut self, parent: u64, name: &OsStr, creator: Creator) -> Result<Attr, FsError> {
        let body = Body::Dir { entries: Entries::new(), durable: Entries::new(), parent };
        self.link_new(parent, name, creator, body)
    }

    /// Remove the entry `name` of `parent`, which must name an inode of kind `kind`.
    fn remove(&mut self, parent: u64, name: &OsStr, kind: Kind) -> Result<(), FsError> {
        let ino = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        match (kind, &self.inode(ino)?.body) {
            (Kind::File, Body::Dir { .. }) => return Err(FsError::IsDir),
            (Kind::Dir, Body::File { .. }) => return Err(FsError::NotDir),
            (Kind::Dir, Body::Dir { entries, .. }) if !entries.is_empty() => return Err(FsError::NotEmpty),
            _ => {}
        }
        self.entries_mut(parent)?.remove(name);
        self.inode_mut(parent)?.meta.touch();
        Ok(())
    }

    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), FsError> {
        self.remove(parent, name, Kind::File)
    }

    pub(crate) fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), FsError> {
        self.remove(parent, name, Kind::Dir)
    }

    /// `rename(2)`/`renameat2(2)`: move `parent/name` to `new_parent/new_name`, replacing what
    /// is there (a file by a file, an empty directory by a directory). `no_replace` is
    /// `RENAME_NOREPLACE`, `exchange` is `RENAME_EXCHANGE`.
    pub(crate) fn rename(&mut self, from: (u64, &OsStr), to: (u64, &OsStr), no_replace: bool, exchange: bool) -> Result<(), FsError> {
        let (parent, name) = from;
        let (new_parent, new_name) = to;
        check_name(new_name)?;
        let src = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        let dst = self.child(new_parent, new_name)?;
        if exchange {
            let dst = dst.ok_or(FsError::NotFound)?;
            self.entries_mut(parent)?.insert(name.to_owned(), dst);
            self.entries_mut(new_parent)?.insert(new_name.to_owned(), src);
            self.set_parent(dst, parent);
            self.set_parent(src, new_parent);
            return self.touch_both(parent, new_parent);
        }
        if let Some(dst) = dst {
            if no_replace {
                return Err(FsError::Exists);
            }
            if dst == src {
                return Ok(());
            }
            match (&self.inode(src)?.body, &self.inode(dst)?.body) {
                (Body::File { .. }, Body::Dir { .. }) => return Err(FsError::IsDir),
                (Body::Dir { .. }, Body::File { .. }) => return Err(FsError::NotDir),
                (Body::Dir { .. }, Body::Dir { entries, .. }) if !entries.is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?.insert(new_name.to_owned(), src);
        self.set_parent(src, new_parent);
        self.touch_both(parent, new_parent)
    }

    fn set_parent(&mut self, ino: u64, new_parent: u64) {
        if let Some(Inode { body: Body::Dir { parent, .. }, .. }) = self.inodes.get_mut(&ino) {
            *parent = new_parent;
        }
    }

    fn touch_both(&mut self, a: u64, b: u64) -> Result<(), FsError> {
        self.inode_mut(a)?.meta.touch();
        self.inode_mut(b)?.meta.touch();
        Ok(())
    }

    /// `opendir`: snapshot the listing (`.`, `..`, then the entries by name); returns the handle.
    pub(crate) fn opendir(&mut self, ino: u64) -> Result<u64, FsError> {
        let Body::Dir { entries, parent, .. } = &self.inode(ino)?.body else {
            return Err(FsError::NotDir);
        };
        let mut listing =
            vec![DirEntry { ino, kind: Kind::Dir, name: ".".into() }, DirEntry { ino: *parent, kind: Kind::Dir, name: "..".into() }];
        for (name, child) in entries {
            // An entry always names a live inode (garbage collection keeps what entries reach).
            let kind = self.inodes.get(child).map_or(Kind::File, Inode::kind);
            listing.push(DirEntry { ino: *child, kind, name: name.clone() });
        }
        let fh = self.take_fh();
        self.dirs.insert(fh, listing);
        Ok(fh)
    }

    /// The snapshot's entries from position `offset` on.
    pub(crate) fn readdir(&self, fh: u64, offset: u64) -> Result<&[DirEntry], FsError> {
        let listing = self.dirs.get(&fh).ok_or(FsError::BadHandle)?;
        let start = usize::try_from(offset).map_or(listing.len(), |offset| offset.min(listing.len()));
        Ok(&listing[start..])
    }

    pub(crate) fn releasedir(&mut self, fh: u64) {
        self.dirs.remove(&fh);
    }
}
