//! The filesystem as plain data: inodes that each hold a *current* state (what system calls
//! see) and a *durable* state (what survives [`Model::cut_power`]). No FUSE and no I/O here,
//! so every durability rule is unit-tested without a mount (`tests.rs`).
//!
//! The operations are split by what they touch: `namespace.rs` (directory entries),
//! `content.rs` (file bytes and attributes), `power.rs` (fsyncdir, the power cut, garbage).

mod content;
mod namespace;
mod power;
#[cfg(test)]
mod tests;

pub(crate) use namespace::Creator;

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

use crate::FsError;

/// The root directory's inode number (FUSE fixes it at 1).
pub(crate) const ROOT: u64 = 1;

/// The largest file size a write, truncate or fallocate may reach.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// The longest name a directory entry may have (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// What [`crate::LossyMount::cut_power`] threw away. Counted over the files and directories
/// that still exist after the cut (a file that vanished with its directory entry is counted in
/// `entries_rolled_back` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Regular files whose contents differed from their last fsync'd contents.
    pub files_rolled_back: usize,
    /// In those files, the byte positions that differed (a position present in only one of the
    /// two versions, because the file grew or shrank since its fsync, counts too).
    pub bytes_discarded: u64,
    /// Directory entries whose creation, removal or replacement since the directory's last
    /// fsync was undone.
    pub entries_rolled_back: usize,
}

/// Counts of the operations the filesystem served since it was mounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `write` requests (each `write`/`pwrite` system call, or each part of a large one).
    pub writes: u64,
    /// Bytes those writes carried.
    pub bytes_written: u64,
    /// `fsync` on regular files (`File::sync_all`).
    pub fsyncs: u64,
    /// `fdatasync` on regular files (`File::sync_data`).
    pub fdatasyncs: u64,
    /// `fsync` or `fdatasync` on directories.
    pub fsyncdirs: u64,
    /// Calls of [`crate::LossyMount::cut_power`].
    pub power_cuts: u64,
}

/// Regular file or directory: the only two kinds this filesystem holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
}

/// What `stat` reports for an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (`0o7777`), without the file type.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// Owner, permission bits and times: never rolled back (see the crate docs).
#[derive(Debug, Clone)]
struct Meta {
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Meta {
    fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta { perm, uid, gid, atime: now, mtime: now, ctime: now }
    }

    fn touch(&mut self) {
        let now = SystemTime::now();
        self.mtime = now;
        self.ctime = now;
    }
}

/// Name → inode number, sorted so that `readdir` is stable.
type Entries = BTreeMap<OsString, u64>;

#[derive(Debug, Clone)]
enum Body {
    File {
        current: Vec<u8>,
        durable: Vec<u8>,
    },
    Dir {
        entries: Entries,
        durable: Entries,
        /// For `..` in `readdir`.
        parent: u64,
    },
}

#[derive(Debug, Clone)]
struct Inode {
    meta: Meta,
    body: Body,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File { .. } => Kind::File,
            Body::Dir { .. } => Kind::Dir,
        }
    }
}

/// An open regular file: the flags that change how writes behave.
#[derive(Debug, Clone, Copy)]
struct Handle {
    ino: u64,
    /// `O_APPEND`: every write goes to the current end of the file, whatever offset it names.
    append: bool,
    /// `O_SYNC` or `O_DSYNC`: every write is durable when it returns.
    sync: bool,
}

/// One entry of a directory listing, as `readdir` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub ino: u64,
    pub kind: Kind,
    pub name: OsString,
}

/// The whole filesystem.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    files: HashMap<u64, Handle>,
    /// Open directories: the listing taken at `opendir`, so that entries created or removed
    /// while a reader pages through it neither repeat nor go missing.
    dirs: HashMap<u64, Vec<DirEntry>>,
    next_fh: u64,
    stats: Stats,
}

impl Model {
    /// An empty filesystem whose root directory has these permission bits and owner. The
    /// root's (empty) entry list starts durable.
    pub(crate) fn new(root_perm: u16, uid: u32, gid: u32) -> Model {
        let root = Inode {
            meta: Meta::new(root_perm & 0o7777, uid, gid),
            body: Body::Dir { entries: Entries::new(), durable: Entries::new(), parent: ROOT },
        };
        Model {
            inodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            files: HashMap::new(),
            dirs: HashMap::new(),
            next_fh: 1,
            stats: Stats::default(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    fn inode(&self, ino: u64) -> Result<&Inode, FsError> {
        self.inodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn inode_mut(&mut self, ino: u64) -> Result<&mut Inode, FsError> {
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    pub(crate) fn attr(&self, ino: u64) -> Result<Attr, FsError> {
        let inode = self.inode(ino)?;
        let size = match &inode.body {
            Body::File { current, .. } => current.len() as u64,
            Body::Dir { .. } => 4096,
        };
        let meta = &inode.meta;
        Ok(Attr {
            ino,
            kind: inode.kind(),
            size,
            perm: meta.perm,
            uid: meta.uid,
            gid: meta.gid,
            atime: meta.atime,
            mtime: meta.mtime,
            ctime: meta.ctime,
        })
    }

    fn entries(&self, dir: u64) -> Result<&Entries, FsError> {
        match &self.inode(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } => Err(FsError::NotDir),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut Entries, FsError> {
        match &mut self.inode_mut(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            Body::File { .. } => Err(FsError::NotDir),
        }
    }

    /// The inode `name` names in directory `parent`, if any.
    fn child(&self, parent: u64, name: &OsStr) -> Result<Option<u64>, FsError> {
        Ok(self.entries(parent)?.get(name).copied())
    }

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr, FsError> {
        let ino = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        self.attr(ino)
    }

    fn take_fh(&mut self) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        fh
    }

    /// Open regular file `ino` with the `open(2)` flags `flags`; returns the file handle.
    pub(crate) fn open(&mut self, ino: u64, flags: i32) -> Result<u64, FsError> {
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::IsDir);
        }
        let fh = self.take_fh();
        let handle = Handle { ino, append: flags & libc::O_APPEND != 0, sync: flags & libc::O_DSYNC != 0 };
        self.files.insert(fh, handle);
        Ok(fh)
    }

    /// Close a file handle; an inode no name and no handle refers to any more is freed.
    pub(crate) fn release(&mut self, fh: u64) {
        if self.files.remove(&fh).is_some() {
            self.collect_garbage();
        }
    }

    /// Bytes held by current file contents (for `statfs`).
    pub(crate) fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| match &inode.body {
                Body::File { current, .. } => current.len() as u64,
                Body::Dir { .. } => 0,
            })
            .sum()
    }

    /// Number of inodes (for `statfs`).
    pub(crate) fn inode_count(&self) -> u64 {
        self.inodes.len() as u64
    }
}
