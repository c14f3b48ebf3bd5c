//! Integration tests: real system calls on a real mount. Each test mounts its own temporary
//! directory and unmounts it on drop (one test binary, modules per topic).

mod data;
mod namespace;
mod posix;
mod redb;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use exclave_lossyfs::LossyMount;
use tempfile::TempDir;

/// A mount on a fresh temporary directory. Fields drop in order: unmount, then remove the
/// directory.
pub(crate) struct Fixture {
    /// The mount, on the temporary directory.
    pub(crate) mount: LossyMount,
    _dir: TempDir,
}

impl Fixture {
    /// Mount a fresh filesystem.
    pub(crate) fn mount() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = LossyMount::mount(dir.path()).expect("mount (needs /dev/fuse and root or fusermount3)");
        Fixture { mount, _dir: dir }
    }

    /// `name` under the mount point.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.mount.path().join(name)
    }

    /// The contents of `name`, `None` if it does not exist.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("read {name}: {e}"),
        }
    }
}

/// fsync a directory, as after a create or rename in it.
pub(crate) fn sync_dir(dir: &Path) {
    File::open(dir).and_then(|d| d.sync_all()).expect("fsync directory");
}

/// A new file with mode 0600, its name made durable (file created, directory fsync'd).
pub(crate) fn create_durable(path: &Path) -> File {
    let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path).expect("create");
    sync_dir(path.parent().expect("a parent"));
    file
}
