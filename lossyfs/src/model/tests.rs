//! The durability rules on the bare model, without a mount: a case table of scripts and what
//! a power cut must leave, then the edges one by one.

use std::ffi::OsStr;

use super::*;
use crate::FsError;

const ROOT_CREATOR: Creator = Creator { uid: 0, gid: 0, mode: 0o644, umask: 0o022 };

/// One step of a case's script. Paths are relative to the root, `/`-separated.
#[derive(Debug, Clone, Copy)]
enum Op {
    Create(&'static str),
    Mkdir(&'static str),
    Write(&'static str, u64, &'static [u8]),
    Truncate(&'static str, u64),
    Fsync(&'static str),
    /// fsync of a directory ("" is the root).
    SyncDir(&'static str),
    Rename(&'static str, &'static str),
    Unlink(&'static str),
    Rmdir(&'static str),
}

/// `(parent, name)` of `path`.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn resolve(model: &Model, path: &str) -> Option<u64> {
    let mut ino = ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = model.child(ino, OsStr::new(part)).ok()??;
    }
    Some(ino)
}

fn dir(model: &Model, path: &str) -> u64 {
    resolve(model, path).expect("the path exists")
}

fn run(model: &mut Model, op: Op) {
    let result = match op {
        Op::Create(path) => {
            let (parent, name) = split(path);
            model.create_file(dir(model, parent), OsStr::new(name), ROOT_CREATOR).map(|_| ())
        }
        Op::Mkdir(path) => {
            let (parent, name) = split(path);
            model.mkdir(dir(model, parent), OsStr::new(name), ROOT_CREATOR).map(|_| ())
        }
        Op::Write(path, offset, data) => {
            let fh = model.open(dir(model, path), libc::O_RDWR).expect("open");
            let written = model.write(fh, offset, data).map(|_| ());
            model.release(fh);
            written
        }
        Op::Truncate(path, size) => model.set_size(dir(model, path), size),
        Op::Fsync(path) => model.fsync(dir(model, path), false),
        Op::SyncDir(path) => model.fsyncdir(dir(model, path)),
        Op::Rename(from, to) => {
            let ((fp, fname), (tp, tname)) = (split(from), split(to));
            model.rename((dir(model, fp), OsStr::new(fname)), (dir(model, tp), OsStr::new(tname)), false, false)
        }
        Op::Unlink(path) => {
            let (parent, name) = split(path);
            model.unlink(dir(model, parent), OsStr::new(name))
        }
        Op::Rmdir(path) => {
            let (parent, name) = split(path);
            model.rmdir(dir(model, parent), OsStr::new(name))
        }
    };
    result.unwrap_or_else(|e| panic!("{op:?}: {e}"));
}

fn contents(model: &Model, path: &str) -> Option<Vec<u8>> {
    let ino = resolve(model, path)?;
    Some(model.read(ino, 0, u32::MAX).expect("a file").to_vec())
}

struct Case {
    name: &'static str,
    script: &'static [Op],
    /// After the cut: each path and its contents (`None`: it does not exist).
    after_cut: &'static [(&'static str, Option<&'static [u8]>)],
}

use Op::*;

const CASES: &[Case] = &[
    Case { name: "unsynced write is lost", script: &[Create("f"), SyncDir(""), Write("f", 0, b"abc")], after_cut: &[("f", Some(b""))] },
    Case {
        name: "fsync keeps a write",
        script: &[Create("f"), SyncDir(""), Write("f", 0, b"abc"), Fsync("f")],
        after_cut: &[("f", Some(b"abc"))],
    },
    Case {
        name: "only the synced prefix of appends survives",
        script: &[Create("f"), SyncDir(""), Write("f", 0, b"one\n"), Fsync("f"), Write("f", 4, b"two\n")],
        after_cut: &[("f", Some(b"one\n"))],
    },
    Case {
        name: "an unsynced truncate is undone",
        script: &[Create("f"), SyncDir(""), Write("f", 0, b"abcdef"), Fsync("f"), Truncate("f", 2)],
        after_cut: &[("f", Some(b"abcdef"))],
    },
    Case {
        name: "a sparse write zero-fills and is lost",
        script: &[Create("f"), SyncDir(""), Write("f", 0, b"ab"), Fsync("f"), Write("f", 4, b"cd")],
        after_cut: &[("f", Some(b"ab"))],
    },
    Case {
        name: "a file synced but not its directory vanishes",
        script: &[Create("f"), Write("f", 0, b"abc"), Fsync("f")],
        after_cut: &[("f", None)],
    },
    Case {
        name: "a new name durable but not its bytes is empty",
        script: &[Create("f"), Write("f", 0, b"abc"), SyncDir("")],
        after_cut: &[("f", Some(b""))],
    },
    Case {
        name: "a rename over a file without a directory fsync is undone",
        script: &[
            Create("key"),
            Write("key", 0, b"old"),
            Fsync("key"),
            Create(".key.tmp"),
            Write(".key.tmp", 0, b"new"),
            Fsync(".key.tmp"),
            SyncDir(""),
            Rename(".key.tmp", "key"),
        ],
        after_cut: &[("key", Some(b"old")), (".key.tmp", Some(b"new"))],
    },
    Case {
        name: "a rename over a file with a directory fsync is kept",
        script: &[
            Create("key"),
            Write("key", 0, b"old"),
            Fsync("key"),
            SyncDir(""),
            Create(".key.tmp"),
            Write(".key.tmp", 0, b"new"),
            Fsync(".key.tmp"),
            Rename(".key.tmp", "key"),
            SyncDir(""),
        ],
        after_cut: &[("key", Some(b"new")), (".key.tmp", None)],
    },
    Case {
        name: "an unsynced unlink is undone",
        script: &[Create("f"), Write("f", 0, b"abc"), Fsync("f"), SyncDir(""), Unlink("f")],
        after_cut: &[("f", Some(b"abc"))],
    },
    Case {
        name: "a synced unlink is kept",
        script: &[Create("f"), Write("f", 0, b"abc"), Fsync("f"), SyncDir(""), Unlink("f"), SyncDir("")],
        after_cut: &[("f", None)],
    },
    Case {
        name: "a directory not linked durably takes its synced files with it",
        script: &[Mkdir("d"), Create("d/f"), Write("d/f", 0, b"abc"), Fsync("d/f"), SyncDir("d")],
        after_cut: &[("d", None), ("d/f", None)],
    },
    Case {
        name: "a directory and file synced top-down survive",
        script: &[Mkdir("d"), SyncDir(""), Create("d/f"), Write("d/f", 0, b"abc"), Fsync("d/f"), SyncDir("d")],
        after_cut: &[("d/f", Some(b"abc"))],
    },
    Case {
        name: "a synced rmdir drops the directory and its durable entries",
        script: &[
            Mkdir("d"),
            SyncDir(""),
            Create("d/f"),
            Write("d/f", 0, b"abc"),
            Fsync("d/f"),
            SyncDir("d"),
            Unlink("d/f"),
            Rmdir("d"),
            SyncDir(""),
            Mkdir("d"),
        ],
        after_cut: &[("d", None), ("d/f", None)],
    },
    Case {
        name: "rmdir undone when the parent was not synced",
        script: &[Mkdir("d"), SyncDir(""), Create("d/f"), Fsync("d/f"), SyncDir("d"), Unlink("d/f"), Rmdir("d")],
        after_cut: &[("d/f", Some(b""))],
    },
    Case {
        name: "a cross-directory rename synced on the target side only leaves two names",
        script: &[
            Mkdir("a"),
            Mkdir("b"),
            SyncDir(""),
            Create("a/f"),
            Write("a/f", 0, b"x"),
            Fsync("a/f"),
            SyncDir("a"),
            Rename("a/f", "b/f"),
            SyncDir("b"),
        ],
        after_cut: &[("a/f", Some(b"x")), ("b/f", Some(b"x"))],
    },
];

#[test]
fn case_table() {
    for case in CASES {
        let mut model = Model::new(0o755, 0, 0);
        for op in case.script {
            run(&mut model, *op);
        }
        model.cut_power();
        for (path, expected) in case.after_cut {
            assert_eq!(contents(&model, path).as_deref(), *expected, "{}: {path}", case.name);
        }
    }
}

#[test]
fn a_second_cut_changes_nothing() {
    for case in CASES {
        let mut model = Model::new(0o755, 0, 0);
        for op in case.script {
            run(&mut model, *op);
        }
        model.cut_power();
        assert_eq!(model.cut_power(), CutReport::default(), "{}", case.name);
    }
}

#[test]
fn the_report_counts_what_was_undone() {
    let mut model = Model::new(0o755, 0, 0);
    for op in [Create("a"), Create("b"), SyncDir(""), Write("a", 0, b"12345"), Fsync("a"), Write("a", 3, b"xyz"), Write("b", 0, b"hi")] {
        run(&mut model, op);
    }
    run(&mut model, Create("c"));
    run(&mut model, Unlink("b"));
    // a: "123xyz" back to "12345" (2 bytes changed, 1 added); b: unlinked, comes back and "hi"
    // goes back to "" (2 added); the name "c" and the removal of "b" are 2 entries. The inode of
    // "c" is freed, so it is not counted as a file.
    let report = model.cut_power();
    assert_eq!(report, CutReport { files_rolled_back: 2, bytes_discarded: 5, entries_rolled_back: 2 });
    assert_eq!(model.stats().power_cuts, 1);
}

#[test]
fn garbage_is_freed_once_no_durable_or_current_name_or_handle_reaches_it() {
    let mut model = Model::new(0o755, 0, 0);
    for op in [Create("f"), SyncDir(""), Create("t"), Rename("t", "f")] {
        run(&mut model, op);
    }
    // The old "f" is still named by the durable root entries: a cut would bring it back.
    assert_eq!(model.inodes.len(), 3);
    run(&mut model, SyncDir(""));
    assert_eq!(model.inodes.len(), 2);
}

#[test]
fn an_open_handle_keeps_its_inode_through_a_cut() {
    let mut model = Model::new(0o755, 0, 0);
    let attr = model.create_file(ROOT, OsStr::new("f"), ROOT_CREATOR).expect("create");
    let fh = model.open(attr.ino, libc::O_RDWR).expect("open");
    model.write(fh, 0, b"abc").expect("write");
    model.cut_power();
    assert_eq!(model.child(ROOT, OsStr::new("f")), Ok(None));
    assert_eq!(model.read(attr.ino, 0, 10), Ok(&b""[..]));
    model.write(fh, 0, b"still").expect("write after the cut");
    assert_eq!(model.read(attr.ino, 0, 10), Ok(&b"still"[..]));
    model.release(fh);
    assert_eq!(model.attr(attr.ino), Err(FsError::NotFound));
}

#[test]
fn append_handles_write_at_the_end_and_sync_handles_are_durable() {
    let mut model = Model::new(0o755, 0, 0);
    let attr = model.create_file(ROOT, OsStr::new("f"), ROOT_CREATOR).expect("create");
    model.fsyncdir(ROOT).expect("fsyncdir");
    let plain = model.open(attr.ino, libc::O_WRONLY).expect("open");
    model.write(plain, 0, b"abc").expect("write");
    let append = model.open(attr.ino, libc::O_WRONLY | libc::O_APPEND).expect("open");
    model.write(append, 0, b"de").expect("append");
    assert_eq!(model.read(attr.ino, 0, 10), Ok(&b"abcde"[..]));
    let sync = model.open(attr.ino, libc::O_WRONLY | libc::O_DSYNC).expect("open");
    model.write(sync, 5, b"f").expect("sync write");
    model.write(plain, 6, b"g").expect("write");
    model.cut_power();
    assert_eq!(model.read(attr.ino, 0, 10), Ok(&b"abcdef"[..]));
}

#[test]
fn create_applies_the_umask_and_o_excl() {
    let mut model = Model::new(0o755, 0, 0);
    let creator = Creator { uid: 7, gid: 8, mode: libc::S_IFREG | 0o666, umask: 0o027 };
    let (attr, _fh) = model.create_open(ROOT, OsStr::new("f"), creator, libc::O_RDWR | libc::O_CREAT).expect("create");
    assert_eq!((attr.perm, attr.uid, attr.gid), (0o640, 7, 8));
    let excl = model.create_open(ROOT, OsStr::new("f"), creator, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
    assert_eq!(excl.map(|_| ()), Err(FsError::Exists));
    let (_, fh) = model.create_open(ROOT, OsStr::new("f"), creator, libc::O_RDWR | libc::O_CREAT).expect("reopen");
    model.write(fh, 0, b"abc").expect("write");
    let (attr, _) = model.create_open(ROOT, OsStr::new("f"), creator, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC).expect("trunc");
    assert_eq!(attr.size, 0);
    model.set_perm(attr.ino, 0o100600).expect("chmod");
    assert_eq!(model.attr(attr.ino).map(|a| a.perm), Ok(0o600));
}

#[test]
fn namespace_errors() {
    let mut model = Model::new(0o755, 0, 0);
    for op in [Mkdir("d"), Mkdir("e"), Create("e/x"), Create("f")] {
        run(&mut model, op);
    }
    let (d, e) = (dir(&model, "d"), dir(&model, "e"));
    let name = OsStr::new;
    let cases: &[(&str, Result<(), FsError>)] = &[
        ("unlink a directory", model.clone().unlink(ROOT, name("d"))),
        ("rmdir a file", model.clone().rmdir(ROOT, name("f"))),
        ("rmdir a non-empty directory", model.clone().rmdir(ROOT, name("e"))),
        ("rename a file over a directory", model.clone().rename((ROOT, name("f")), (ROOT, name("d")), false, false)),
        ("rename a directory over a file", model.clone().rename((ROOT, name("d")), (ROOT, name("f")), false, false)),
        ("rename over a non-empty directory", model.clone().rename((ROOT, name("d")), (ROOT, name("e")), false, false)),
        ("rename onto an empty directory", model.clone().rename((ROOT, name("e")), (ROOT, name("d")), false, false)),
        ("RENAME_NOREPLACE over a file", model.clone().rename((e, name("x")), (ROOT, name("f")), true, false)),
        ("RENAME_EXCHANGE", model.clone().rename((e, name("x")), (d, name("y")), false, true)),
        ("a missing source", model.clone().unlink(ROOT, name("nope"))),
        ("a file as a directory", model.clone().create_file(dir(&model, "f"), name("x"), ROOT_CREATOR).map(|_| ())),
        ("a name too long", model.clone().create_file(ROOT, name(&"n".repeat(256)), ROOT_CREATOR).map(|_| ())),
        ("a slash in a name", model.clone().create_file(ROOT, name("a/b"), ROOT_CREATOR).map(|_| ())),
    ];
    let expected = [
        Err(FsError::IsDir),
        Err(FsError::NotDir),
        Err(FsError::NotEmpty),
        Err(FsError::IsDir),
        Err(FsError::NotDir),
        Err(FsError::NotEmpty),
        Ok(()),
        Err(FsError::Exists),
        Err(FsError::NotFound),
        Err(FsError::NotFound),
        Err(FsError::NotDir),
        Err(FsError::NameTooLong),
        Err(FsError::Invalid),
    ];
    for ((what, got), want) in cases.iter().zip(expected) {
        assert_eq!(*got, want, "{what}");
    }
}

#[test]
fn rename_exchange_swaps_and_readdir_lists_a_snapshot() {
    let mut model = Model::new(0o755, 0, 0);
    for op in [Create("a"), Write("a", 0, b"A"), Mkdir("b")] {
        run(&mut model, op);
    }
    model.rename((ROOT, OsStr::new("a")), (ROOT, OsStr::new("b")), false, true).expect("exchange");
    assert_eq!(contents(&model, "b").as_deref(), Some(&b"A"[..]));
    let fh = model.opendir(ROOT).expect("opendir");
    run(&mut model, Create("c"));
    let names: Vec<_> = model.readdir(fh, 0).expect("readdir").iter().map(|e| (e.name.clone(), e.kind)).collect();
    let expected: Vec<_> = [(".", Kind::Dir), ("..", Kind::Dir), ("a", Kind::Dir), ("b", Kind::File)]
        .into_iter()
        .map(|(n, k)| (std::ffi::OsString::from(n), k))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(model.readdir(fh, 3).expect("readdir").len(), 1);
    assert_eq!(model.readdir(fh, 9).expect("readdir").len(), 0);
}

#[test]
fn writes_beyond_the_maximum_size_are_refused() {
    let mut model = Model::new(0o755, 0, 0);
    let attr = model.create_file(ROOT, OsStr::new("f"), ROOT_CREATOR).expect("create");
    let fh = model.open(attr.ino, libc::O_RDWR).expect("open");
    assert_eq!(model.write(fh, MAX_FILE_SIZE, b"x"), Err(FsError::TooBig));
    assert_eq!(model.set_size(attr.ino, MAX_FILE_SIZE + 1), Err(FsError::TooBig));
    assert_eq!(model.write(fh + 100, 0, b"x"), Err(FsError::BadHandle));
}
