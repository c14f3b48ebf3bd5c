//! Directory entries: names are durable only after an fsync of their directory.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{create_durable, sync_dir, Fixture};

/// Exclave's durable write (exclave-durable): temp file with the final mode, fsync, rename over
/// the target, and, if `sync_parent`, fsync of the directory.
fn replace(path: &Path, data: &[u8], sync_parent: bool) {
    let tmp = path.with_file_name(".key.tmp");
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).expect("create temp");
    f.write_all(data).expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    fs::rename(&tmp, path).expect("rename over");
    if sync_parent {
        sync_dir(path.parent().expect("parent"));
    }
}

#[test]
fn a_created_file_vanishes_without_a_directory_fsync() {
    let fx = Fixture::mount();
    let mut f = fs::File::create(fx.path("f")).expect("create");
    f.write_all(b"abc").expect("write");
    f.sync_all().expect("fsync the file, not its directory");
    drop(f);
    let report = fx.mount.cut_power();
    assert_eq!(fx.read("f"), None);
    assert_eq!(report.entries_rolled_back, 1);
    assert!(fs::read_dir(fx.mount.path()).expect("readdir").next().is_none());
}

#[test]
fn a_created_file_survives_with_a_directory_fsync() {
    let fx = Fixture::mount();
    let mut f = fs::File::create(fx.path("f")).expect("create");
    f.write_all(b"abc").expect("write");
    f.sync_all().expect("fsync");
    sync_dir(fx.mount.path());
    drop(f);
    assert_eq!(fx.mount.cut_power().entries_rolled_back, 0);
    assert_eq!(fx.read("f").as_deref(), Some(&b"abc"[..]));
}

#[test]
fn a_rename_over_without_a_directory_fsync_is_undone() {
    let fx = Fixture::mount();
    let key = fx.path("key");
    replace(&key, b"old", true);
    replace(&key, b"new", false);
    assert_eq!(fx.read("key").as_deref(), Some(&b"new"[..]));
    assert_eq!(fx.read(".key.tmp"), None);
    fx.mount.cut_power();
    assert_eq!(fx.read("key").as_deref(), Some(&b"old"[..]));
}

#[test]
fn a_rename_over_with_a_directory_fsync_is_kept() {
    let fx = Fixture::mount();
    let key = fx.path("key");
    replace(&key, b"old", true);
    replace(&key, b"new", true);
    fx.mount.cut_power();
    assert_eq!(fx.read("key").as_deref(), Some(&b"new"[..]));
    assert_eq!(fx.read(".key.tmp"), None);
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let fx = Fixture::mount();
    let mut f = create_durable(&fx.path("f"));
    f.write_all(b"abc").expect("write");
    f.sync_data().expect("fdatasync");
    drop(f);
    fs::remove_file(fx.path("f")).expect("unlink");
    assert_eq!(fx.read("f"), None);
    fx.mount.cut_power();
    assert_eq!(fx.read("f").as_deref(), Some(&b"abc"[..]));
    fs::remove_file(fx.path("f")).expect("unlink");
    sync_dir(fx.mount.path());
    fx.mount.cut_power();
    assert_eq!(fx.read("f"), None);
}

#[test]
fn directories_need_their_parent_synced() {
    let fx = Fixture::mount();
    fs::create_dir(fx.path("a")).expect("mkdir");
    fs::create_dir(fx.path("b")).expect("mkdir");
    sync_dir(fx.mount.path());
    fs::create_dir(fx.path("b/sub")).expect("mkdir");
    fs::create_dir(fx.path("late")).expect("mkdir after the fsync");
    fx.mount.cut_power();
    let mut names: Vec<_> =
        fs::read_dir(fx.mount.path()).expect("readdir").map(|e| e.expect("entry").file_name().into_string().expect("utf-8")).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert!(fs::read_dir(fx.path("b")).expect("readdir").next().is_none());
    fs::remove_dir(fx.path("a")).expect("rmdir");
    sync_dir(fx.mount.path());
    fx.mount.cut_power();
    assert!(!fx.path("a").exists());
}

#[test]
fn readdir_lists_names_and_kinds() {
    let fx = Fixture::mount();
    for i in 0..300 {
        fs::write(fx.path(&format!("file-{i:03}")), b"x").expect("create");
    }
    fs::create_dir(fx.path("dir")).expect("mkdir");
    let mut entries: Vec<_> = fs::read_dir(fx.mount.path())
        .expect("readdir")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().into_string().expect("utf-8"), e.file_type().expect("type").is_dir())
        })
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 301);
    assert_eq!(entries[0], ("dir".to_owned(), true));
    assert_eq!(entries[300], ("file-299".to_owned(), false));
}

#[test]
fn o_excl_o_trunc_and_namespace_errors() {
    let fx = Fixture::mount();
    let path = fx.path("f");
    fs::write(&path, b"abc").expect("create");
    let excl = OpenOptions::new().write(true).create_new(true).open(&path);
    assert_eq!(excl.map(|_| ()).map_err(|e| e.kind()), Err(ErrorKind::AlreadyExists));
    drop(OpenOptions::new().write(true).truncate(true).open(&path).expect("O_TRUNC"));
    assert_eq!(fx.read("f").as_deref(), Some(&b""[..]));
    fs::create_dir(fx.path("d")).expect("mkdir");
    fs::write(fx.path("d/x"), b"").expect("create");
    assert_eq!(fs::remove_dir(fx.path("d")).map_err(|e| e.kind()), Err(ErrorKind::DirectoryNotEmpty));
    assert!(fs::remove_file(fx.path("d")).is_err());
    assert_eq!(fs::rename(&path, fx.path("d")).map_err(|e| e.kind()), Err(ErrorKind::IsADirectory));
    assert_eq!(fs::read(fx.path("nope")).map_err(|e| e.kind()), Err(ErrorKind::NotFound));
}
