//! File contents: what survives a cut after which sequence of writes, truncates and syncs.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::{create_durable, Fixture};

#[derive(Debug, Clone, Copy)]
enum Step {
    /// `write` at the handle's position (the end, for an `O_APPEND` handle).
    Write(&'static [u8]),
    /// `pwrite`.
    WriteAt(u64, &'static [u8]),
    /// `ftruncate`.
    SetLen(u64),
    /// `fsync`.
    SyncAll,
    /// `fdatasync`.
    SyncData,
}

struct Case {
    name: &'static str,
    /// Reopen the file `O_APPEND` before the steps (a log writer).
    append: bool,
    steps: &'static [Step],
    before_cut: &'static [u8],
    after_cut: &'static [u8],
}

use Step::*;

const CASES: &[Case] = &[
    Case { name: "an unsynced write is lost", append: false, steps: &[Write(b"abc")], before_cut: b"abc", after_cut: b"" },
    Case { name: "an fsync'd write is kept", append: false, steps: &[Write(b"abc"), SyncAll], before_cut: b"abc", after_cut: b"abc" },
    Case { name: "an fdatasync'd write is kept", append: false, steps: &[Write(b"abc"), SyncData], before_cut: b"abc", after_cut: b"abc" },
    Case {
        name: "appends after an fsync leave only the synced prefix",
        append: true,
        steps: &[Write(b"{\"n\":1}\n"), SyncData, Write(b"{\"n\":2}\n"), Write(b"{\"n\":3}\n")],
        before_cut: b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n",
        after_cut: b"{\"n\":1}\n",
    },
    Case {
        name: "appends ignore the position they are written at",
        append: true,
        steps: &[Write(b"ab"), WriteAt(0, b"cd"), SyncAll],
        before_cut: b"abcd",
        after_cut: b"abcd",
    },
    Case {
        name: "an unsynced truncate is undone",
        append: false,
        steps: &[Write(b"abcdef"), SyncAll, SetLen(2)],
        before_cut: b"ab",
        after_cut: b"abcdef",
    },
    Case {
        name: "an unsynced extension is undone",
        append: false,
        steps: &[Write(b"ab"), SyncData, SetLen(4)],
        before_cut: b"ab\0\0",
        after_cut: b"ab",
    },
    Case {
        name: "a synced truncate is kept",
        append: false,
        steps: &[Write(b"abcdef"), SetLen(3), SyncData],
        before_cut: b"abc",
        after_cut: b"abc",
    },
    Case {
        name: "a sparse pwrite beyond the end zero-fills",
        append: false,
        steps: &[WriteAt(4, b"cd"), SyncData, WriteAt(8, b"ef")],
        before_cut: b"\0\0\0\0cd\0\0ef",
        after_cut: b"\0\0\0\0cd",
    },
    Case {
        name: "an overwrite after a sync is undone",
        append: false,
        steps: &[Write(b"abcdef"), SyncAll, WriteAt(2, b"XY")],
        before_cut: b"abXYef",
        after_cut: b"abcdef",
    },
];

#[test]
fn case_table() {
    for case in CASES {
        let fx = Fixture::mount();
        let path = fx.path("f");
        let mut file = create_durable(&path);
        if case.append {
            file = OpenOptions::new().read(true).append(true).open(&path).expect("reopen O_APPEND");
        }
        for step in case.steps {
            match *step {
                Write(data) => file.write_all(data),
                WriteAt(offset, data) => file.write_all_at(data, offset),
                SetLen(len) => file.set_len(len),
                SyncAll => file.sync_all(),
                SyncData => file.sync_data(),
            }
            .unwrap_or_else(|e| panic!("{}: {step:?}: {e}", case.name));
        }
        drop(file);
        assert_eq!(fx.read("f").as_deref(), Some(case.before_cut), "{}: before the cut", case.name);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), case.before_cut.len() as u64, "{}: stat size", case.name);
        fx.mount.cut_power();
        assert_eq!(fx.read("f").as_deref(), Some(case.after_cut), "{}: after the cut", case.name);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), case.after_cut.len() as u64, "{}: stat size after", case.name);
    }
}

#[test]
fn the_cut_report_and_stats_count_what_happened() {
    let fx = Fixture::mount();
    let mut file = create_durable(&fx.path("f"));
    file.write_all(b"12345").expect("write");
    file.sync_all().expect("fsync");
    file.write_all_at(b"xyz", 3).expect("pwrite");
    file.sync_data().expect("fdatasync");
    file.write_all(b"lost").expect("write");
    drop(file);
    let stats = fx.mount.stats();
    assert_eq!((stats.writes, stats.bytes_written, stats.fsyncs, stats.fdatasyncs), (3, 12, 1, 1));
    assert!(stats.fsyncdirs >= 1, "{stats:?}");
    let report = fx.mount.cut_power();
    assert_eq!((report.files_rolled_back, report.bytes_discarded, report.entries_rolled_back), (1, 4, 0));
    assert_eq!(fx.read("f").as_deref(), Some(&b"123xyz"[..]));
    assert_eq!(fx.mount.stats().power_cuts, 1);
}

#[test]
fn a_handle_open_across_the_cut_keeps_working() {
    let fx = Fixture::mount();
    let mut file = create_durable(&fx.path("f"));
    file.write_all(b"abc").expect("write");
    file.sync_data().expect("fdatasync");
    file.write_all(b"def").expect("write");
    fx.mount.cut_power();
    let mut synced = [0; 4];
    let n = file.read_at(&mut synced, 0).expect("read through the old handle");
    assert_eq!(&synced[..n], b"abc");
    file.write_all_at(b"XY", 3).expect("write after the cut");
    file.sync_all().expect("fsync after the cut");
    drop(file);
    assert_eq!(fx.read("f").as_deref(), Some(&b"abcXY"[..]));
}
