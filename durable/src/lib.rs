//! # exclave-durable
//!
//! The one way Exclave writes a whole file that must survive a crash or a power cut (key
//! files, the audit key, the dev chain pin, interchange exports, dev TLS files): write a
//! temporary file beside the target with the final mode, fsync it, rename it over the target,
//! fsync the directory. A reader sees either the old file or the new one, never a torn one, and
//! after [`write_file`] returns the new one is on disk.
//!
//! What this crate is **not**: an append log (the signing log keeps its own fdatasync'd
//! appends), or a lock: two writers of one path race, the last rename wins.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

/// The temporary file [`write_file`] uses for `path`: `.<name>.tmp` in the same directory
/// (hidden, so that a directory scan such as the keystore's skips one a crash left behind).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// Write `data` to `path` with permission bits `mode` (set at creation, before any byte is
/// written), durably: temp file, fsync, rename, fsync of the directory. An error leaves the
/// old file (if any) in place.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temp_path(path);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Create directory `dir` and any missing parents, each with permission bits `mode`, durably:
/// after each one is made, the directory holding it is fsync'd, so a power cut cannot take away
/// a directory (and every file durably written into it) that this call reported made.
pub fn create_dir_all(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent, mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// fsync the directory holding `path`, after a create or rename in it.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::File::open(dir)?.sync_all(),
        _ => fs::File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_replaces_and_sets_the_mode_without_leaving_the_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        write_file(&path, b"one", 0o600).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"one");
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        // A temp file left by a crash is replaced, not an error.
        fs::write(temp_path(&path), b"torn").expect("plant");
        write_file(&path, b"two", 0o644).expect("rewrite");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o644);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn directories_are_created_with_their_parents_and_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("a").join("b").join("c");
        create_dir_all(&deep, 0o700).expect("create");
        for d in [dir.path().join("a"), dir.path().join("a/b"), deep.clone()] {
            assert_eq!(fs::metadata(&d).expect("meta").permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        create_dir_all(&deep, 0o700).expect("again: nothing to do");
        fs::write(dir.path().join("file"), b"x").expect("file");
        assert!(create_dir_all(&dir.path().join("file"), 0o700).is_err(), "a file in the way is an error");
    }

    #[test]
    fn a_missing_directory_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("key");
        assert!(write_file(&path, b"x", 0o600).is_err());
        assert!(!path.exists());
    }
}
