//! # exclave-lossyfs
//!
//! Test support: a FUSE filesystem that simulates a power cut, after Jepsen's
//! [LazyFS](https://github.com/dsrhaslab/lazyfs). It keeps everything a program wrote but did
//! not make durable in a cache of its own, and [`LossyMount::cut_power`] throws that away, so a
//! test can check that what a program claimed was durable (a signature's claim, a log line, a
//! key file) really was fsync'd before the claim.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! let dir = tempfile::tempdir()?;
//! let mount = exclave_lossyfs::LossyMount::mount(dir.path())?;
//! let mut f = std::fs::File::create(mount.path().join("log"))?;
//! std::fs::File::open(mount.path())?.sync_all()?; // the new name is durable
//! f.write_all(b"synced\n")?;
//! f.sync_data()?; // these bytes are durable
//! f.write_all(b"lost\n")?; // these are not
//! drop(f);
//! mount.cut_power();
//! assert_eq!(std::fs::read(mount.path().join("log"))?, b"synced\n");
//! # Ok(()) }
//! ```
//!
//! ## The model
//!
//! The filesystem lives in memory (there is no backing directory) and is served by a background
//! thread of the calling process (`fuser::spawn_mount`). It holds regular files and directories
//! only. Every inode has a *current* state, which every system call sees, and a *durable* state,
//! which is what a power cut leaves:
//!
//! - **File contents.** `write`/`pwrite` (with `O_APPEND`: at the current end of the file),
//!   `ftruncate`/`truncate`/`set_len`, `O_TRUNC` and `fallocate` change the current bytes only.
//!   `fsync` and `fdatasync` of the file (`File::sync_all`, `File::sync_data`; the same here)
//!   copy the current bytes, size included, to the durable bytes. A write through a handle
//!   opened `O_SYNC` or `O_DSYNC` is durable when it returns. A file never fsync'd is durably
//!   empty.
//! - **Directory entries.** `create`, `mkdir`, `mknod`, `rename` (also over an existing file,
//!   and `RENAME_NOREPLACE`/`RENAME_EXCHANGE`), `unlink` and `rmdir` change the current entries
//!   of the directories involved only. `fsync` of the directory (`File::open(dir)?.sync_all()`)
//!   copies its current entries to its durable entries. The root starts durable and empty, a
//!   new directory's entries start durable and empty. This is the strict POSIX rule: fsync of
//!   a file does **not** make its name durable (ext4 and XFS usually do; code that relies on
//!   that is caught here).
//! - **The power cut** ([`LossyMount::cut_power`]): every directory's entries become its
//!   durable entries, then every file's bytes become its durable bytes. So a file created in a
//!   directory never fsync'd afterwards vanishes (whatever fsyncs the file had); one whose
//!   directory was fsync'd but whose bytes never were is empty; a rename or unlink not followed
//!   by a fsync of the directory is undone (the old file comes back with its durable bytes).
//!   Inodes that no name reaches any more are freed, unless a handle still holds them open:
//!   a handle opened before the cut keeps reading and writing its inode (rolled back like the
//!   others), even if no name reaches it any more. The caller should kill the processes that use
//!   the mount first, as a power cut would; a cut with files still open is allowed.
//!
//! Everything else is immediately durable and never rolled back: permission bits (`chmod`, the
//! creation mode `mode & !umask`), owner, and timestamps.
//!
//! What the kernel sees: entries and attributes are never cached (zero TTL), regular files are
//! opened `FOPEN_DIRECT_IO` (no page cache: every read and write reaches this process; the
//! kernel refuses a `MAP_SHARED` `mmap` of such a file), the writeback cache is off, and no
//! lock capability is advertised, so `flock` and `fcntl` locks work as on any local filesystem
//! (in the kernel). The mount uses `default_permissions` (the kernel checks permission bits;
//! root passes). `statfs` always reports 1 GiB free. A file may grow to [`MAX_FILE_SIZE`].
//!
//! ## What it does **not** model
//!
//! - Partial loss: a cut loses *all* unsynced changes of a file, never some of them, and never
//!   tears a write or reorders writes (LazyFS's "torn" faults); nothing is lost without a cut.
//! - Metadata durability: permission bits, owner and times survive a cut even when the change
//!   was never fsync'd.
//! - Atomic cross-directory renames: a rename between two directories is durable per directory.
//!   fsync only the target and after a cut the file has two names (like a hard link; a
//!   directory, two parents); fsync only the source and it has none. A journaling filesystem
//!   commits both sides at once.
//! - Write errors, a full disk (`ENOSPC`), `EIO` on fsync, slow disks.
//! - Symlinks, hard links, device nodes, extended attributes, shared `mmap`,
//!   `copy_file_range` (callers such as `std::fs::copy` fall back to read and write), hole
//!   punching and the other `fallocate` modes but plain extension.
//! - Link counts (`nlink` is 1 for a file, 2 for a directory) and disk usage.
//! - Several mounts sharing state, or state surviving an unmount: each mount starts empty and
//!   its contents are gone when the [`LossyMount`] is dropped.
//!
//! What this crate is **not**: a filesystem for production data, or a fault injector for
//! anything but durability.

mod error;
mod fuse;
mod model;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use error::FsError;
pub use model::{CutReport, Stats, MAX_FILE_SIZE};

use model::Model;

/// A mounted lossy filesystem. Dropping it unmounts it (during a panic too) and frees its
/// contents; the mount point directory itself is left as it was.
pub struct LossyMount {
    path: PathBuf,
    /// `path` made absolute, for the lazy unmount.
    canonical: PathBuf,
    /// The device of the mount point before the mount: while mounted, `stat` shows another.
    underlying_dev: u64,
    model: Arc<Mutex<Model>>,
    session: Option<fuser::BackgroundSession>,
}

impl std::fmt::Debug for LossyMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossyMount").field("path", &self.path).finish_non_exhaustive()
    }
}

impl LossyMount {
    /// Mount an empty lossy filesystem on `mountpoint`, an existing directory (root, or
    /// `fusermount3` for other users). Its root directory takes the mount point's permission
    /// bits and owner.
    pub fn mount(mountpoint: &Path) -> std::io::Result<LossyMount> {
        let canonical = mountpoint.canonicalize()?;
        let meta = std::fs::metadata(&canonical)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "the mount point must be a directory"));
        }
        // The mask keeps 12 bits, so the cast is lossless.
        let model = Arc::new(Mutex::new(Model::new((meta.mode() & 0o7777) as u16, meta.uid(), meta.gid())));
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("exclave-lossyfs".to_owned()), fuser::MountOption::DefaultPermissions];
        config.n_threads = Some(1);
        let session = fuser::spawn_mount(fuse::LossyFs::new(Arc::clone(&model)), mountpoint, &config)?;
        Ok(LossyMount { path: mountpoint.to_path_buf(), canonical, underlying_dev: meta.dev(), model, session: Some(session) })
    }

    /// The mount point, as given to [`LossyMount::mount`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Throw away everything not made durable, as a power cut would: see the crate docs for
    /// exactly what that is.
    pub fn cut_power(&self) -> CutReport {
        self.model.lock().cut_power()
    }

    /// What the filesystem has served so far.
    pub fn stats(&self) -> Stats {
        self.model.lock().stats()
    }
}

impl Drop for LossyMount {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else { return };
        if session.umount_and_join().is_ok() || !self.still_mounted() {
            return;
        }
        // Busy (a process still has a file open there): detach it now; the kernel ends the
        // session, and the serving thread, when the last file is closed.
        let _detached = nix::mount::umount2(&self.canonical, nix::mount::MntFlags::MNT_DETACH);
    }
}

impl LossyMount {
    /// Whether this filesystem is still mounted: the mount point shows another device than
    /// the one it had before the mount.
    fn still_mounted(&self) -> bool {
        std::fs::metadata(&self.canonical).is_ok_and(|meta| meta.dev() != self.underlying_dev)
    }
}
