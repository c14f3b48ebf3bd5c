//! The FUSE side: each request locks the [`Model`], runs one operation and replies.
//!
//! Caching is off everywhere the kernel would otherwise answer without asking us: entries and
//! attributes have a zero TTL, every regular file is opened `FOPEN_DIRECT_IO` (no page cache,
//! so every read and write reaches this process and `mmap` is refused), the writeback cache is
//! not requested, and no lock capability is advertised (`flock`/`fcntl` locks stay in the
//! kernel, as on a local filesystem).

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::model::{Attr, Creator, Kind, Model};
use crate::FsError;

/// Nothing is cached by the kernel: a power cut must be visible at the next system call.
const TTL: Duration = Duration::ZERO;
const BLOCK: u64 = 4096;
/// `statfs` always reports this much free space.
const FREE_BYTES: u64 = 1 << 30;
const FREE_INODES: u64 = 1 << 20;

pub(crate) struct LossyFs {
    model: Arc<Mutex<Model>>,
}

impl LossyFs {
    pub(crate) fn new(model: Arc<Mutex<Model>>) -> LossyFs {
        LossyFs { model }
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.ctime,
        kind: match attr.kind {
            Kind::File => FileType::RegularFile,
            Kind::Dir => FileType::Directory,
        },
        perm: attr.perm,
        nlink: match attr.kind {
            Kind::File => 1,
            Kind::Dir => 2,
        },
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: BLOCK as u32,
        flags: 0,
    }
}

fn entry(reply: ReplyEntry, result: Result<Attr, FsError>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
        Err(e) => reply.error(e.errno()),
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), FsError>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e.errno()),
    }
}

fn time(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// The changes of one `setattr`, applied in the order the system calls would.
struct SetAttr {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

fn setattr(model: &mut Model, ino: u64, change: SetAttr) -> Result<Attr, FsError> {
    if let Some(mode) = change.mode {
        model.set_perm(ino, mode)?;
    }
    if change.uid.is_some() || change.gid.is_some() {
        model.set_owner(ino, change.uid, change.gid)?;
    }
    if let Some(size) = change.size {
        model.set_size(ino, size)?;
    }
    if change.atime.is_some() || change.mtime.is_some() {
        model.set_times(ino, change.atime.map(time), change.mtime.map(time))?;
    }
    model.attr(ino)
}

fn creator(req: &Request, mode: u32, umask: u32) -> Creator {
    Creator { uid: req.uid(), gid: req.gid(), mode, umask }
}

impl Filesystem for LossyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        entry(reply, self.model.lock().lookup(parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model.lock().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr { mode, uid, gid, size, atime, mtime };
        match setattr(&mut self.model.lock(), ino.0, change) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, _rdev: u32, reply: ReplyEntry) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(FsError::Unsupported.errno());
            return;
        }
        entry(reply, self.model.lock().create_file(parent.0, name, creator(req, mode, umask)));
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        entry(reply, self.model.lock().mkdir(parent.0, name, creator(req, mode, umask)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.model.lock().unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.model.lock().rmdir(parent.0, name));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        empty(reply, self.model.lock().rename((parent.0, name), (newparent.0, newname), no_replace, exchange));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.model.lock().open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn create(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, flags: i32, reply: ReplyCreate) {
        match self.model.lock().create_open(parent.0, name, creator(req, mode, umask), flags) {
            Ok((attr, fh)) => reply.created(&TTL, &file_attr(&attr), Generation(0), FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.model.lock().read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model.lock().write(fh.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.model.lock().release(fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.model.lock().fsync(ino.0, datasync));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model.lock().opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let model = self.model.lock();
        let entries = match model.readdir(fh.0, offset) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e.errno()),
        };
        for (next, entry) in (offset + 1..).zip(entries) {
            let kind = match entry.kind {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
            };
            if reply.add(INodeNo(entry.ino), next, kind, &entry.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.model.lock().releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.model.lock().fsyncdir(ino.0));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let model = self.model.lock();
        let free = FREE_BYTES / BLOCK;
        let blocks = model.used_bytes().div_ceil(BLOCK) + free;
        let files = model.inode_count() + FREE_INODES;
        reply.statfs(blocks, free, free, files, FREE_INODES, BLOCK as u32, 255, BLOCK as u32);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        empty(reply, self.model.lock().attr(ino.0).map(|_| ()));
    }

    fn fallocate(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, length: u64, mode: i32, reply: ReplyEmpty) {
        match self.model.lock().fallocate(ino.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(FsError::Unsupported) => reply.error(Errno::EOPNOTSUPP),
            Err(e) => reply.error(e.errno()),
        }
    }
}
