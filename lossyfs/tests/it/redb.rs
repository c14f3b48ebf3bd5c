//! A real redb database on the mount: a commit with `Durability::Immediate` survives a power cut,
//! one with `Durability::None` does not, and the database opens cleanly afterwards.
//!
//! The writes happen in a child process (this test binary, re-run on one test) that exits
//! without closing the database, as a killed signer would: closing it cleanly would make the
//! last commit durable (redb's `Drop` commits its allocator state).

use std::path::{Path, PathBuf};
use std::process::Command;

use redb::{Database, Durability, TableDefinition};

use crate::{sync_dir, Fixture};

const CHILD_ENV: &str = "EXCLAVE_LOSSYFS_REDB_CHILD";
const CLAIMS: TableDefinition<&str, u64> = TableDefinition::new("claims");

fn commit(db: &Database, durability: Durability, rows: &[(&str, u64)]) {
    let mut txn = db.begin_write().expect("begin write");
    txn.set_durability(durability);
    {
        let mut table = txn.open_table(CLAIMS).expect("open table");
        for (key, value) in rows {
            table.insert(*key, *value).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

fn get(db: &Database, key: &str) -> Option<u64> {
    let txn = db.begin_read().expect("begin read");
    let table = txn.open_table(CLAIMS).expect("open table");
    table.get(key).expect("get").map(|v| v.value())
}

/// The writer process of `an_immediate_commit_survives_and_a_none_commit_does_not`; a no-op
/// when run as a test by itself.
#[test]
fn redb_writer_process() {
    let Some(path) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else { return };
    let db = Database::create(&path).expect("create");
    sync_dir(path.parent().expect("parent"));
    commit(&db, Durability::Immediate, &[("slot-1", 1)]);
    let big: Vec<(String, u64)> = (0..2_000).map(|i| (format!("volatile-{i:05}"), i)).collect();
    let rows: Vec<(&str, u64)> = big.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    commit(&db, Durability::None, &rows);
    commit(&db, Durability::None, &[("slot-1", 99), ("slot-2", 2)]);
    assert_eq!(get(&db, "slot-2"), Some(2));
    // Exit without dropping `db`: no destructor runs, the kernel closes the file.
    std::process::exit(0);
}

fn run_writer(db_path: &Path) {
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new(exe)
        .args(["--exact", "redb::redb_writer_process", "--nocapture"])
        .env(CHILD_ENV, db_path)
        .status()
        .expect("run the writer");
    assert!(status.success(), "writer: {status}");
}

#[test]
fn an_immediate_commit_survives_and_a_none_commit_does_not() {
    let fx = Fixture::mount();
    let db_path = fx.path("claims.redb");
    run_writer(&db_path);
    let stats = fx.mount.stats();
    assert!(stats.fdatasyncs + stats.fsyncs >= 1, "redb never synced: {stats:?}");
    let report = fx.mount.cut_power();
    // The None commits wrote pages that were never synced: the cut throws them away (redb's
    // header still names the Immediate commit, so they would be invisible after a mere kill too;
    // what the cut adds is the loss of every unsynced byte).
    assert_eq!(report.files_rolled_back, 1, "{report:?}");
    assert!(report.bytes_discarded > 0, "{report:?}");
    let db = Database::open(&db_path).expect("the database opens cleanly after the cut");
    assert_eq!(get(&db, "slot-1"), Some(1), "the Immediate commit is lost or the None commit survived");
    assert_eq!(get(&db, "slot-2"), None);
    assert_eq!(get(&db, "volatile-00001"), None);
    // Still usable: a new durable commit, a clean close, another cut.
    commit(&db, Durability::Immediate, &[("slot-3", 3)]);
    drop(db);
    fx.mount.cut_power();
    let db = Database::open(&db_path).expect("reopen");
    assert_eq!((get(&db, "slot-1"), get(&db, "slot-3")), (Some(1), Some(3)));
}
