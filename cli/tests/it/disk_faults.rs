//! Disk faults injected into a real signer process with libfiu (`fiu-run -x`, Debian's
//! `fiu-utils`; `.ci/run` installs it) and switched on and off with `fiu-ctrl`: EIO on
//! fdatasync, ENOSPC on write and pwrite. While the disk fails, the signer refuses with a clear
//! error (nothing signed), does not panic, and `/ready` and a metric say why; when the disk
//! recovers, it signs again. A batch whose fdatasync failed never counts as written later: the
//! signing log cuts it off (so the log holds no record of a signature nobody received), and the
//! embedded store serves nothing until it has committed that batch's claims again.

use crate::common::*;
use exclave_protocol::{ErrorKind, ExclaveApiClient, ExclaveError, SignResponse};
use exclave_tikv_protocol_standin::StandIn;
use std::{
    process::Command,
    time::{Duration, Instant},
};

const EIO: u32 = 5;
const ENOSPC: u32 = 28;

/// Run a libfiu remote-control command in the signer process.
fn fiu(signer: &Signer, command: &str) {
    let out = Command::new("fiu-ctrl")
        .args(["-c", command, &signer.child.id().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("fiu-ctrl (apt-get install fiu-utils): {e}"));
    assert!(out.status.success(), "fiu-ctrl -c {command:?}: {out:?}");
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn error_of(answer: &Result<SignResponse, jsonrpsee::core::ClientError>) -> ExclaveError {
    match answer {
        Err(jsonrpsee::core::ClientError::Call(obj)) => ExclaveError::from_object(obj).expect("an Exclave error"),
        other => panic!("expected a refusal while the disk fails, got {other:?}"),
    }
}

fn spawn_under_fiu(dir: &std::path::Path, cfg: TestConfig) -> Signer {
    let args = ["serve".into(), "--config".into(), cfg.write().display().to_string()];
    Signer::spawn_under(&["fiu-run", "-x"], &args, dir)
}

fn ready(signer: &Signer) -> (u16, String) {
    http_get(&format!("http://{}/ready", signer.metrics))
}

/// The embedded store and the signing log on a failing disk: each fault refuses signing,
/// `/ready` names it, the process lives on, and once the fault is gone the signer signs again
/// (after it recovers the store). The signatures the client received are all in a log that
/// verifies.
#[test]
fn a_failing_disk_refuses_signing_and_the_signer_recovers_when_the_disk_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let mut signer = spawn_under_fiu(dir.path(), TestConfig::new(dir.path(), "signer-a").min_free_bytes(0));
    let client = signer.client();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut received = Vec::new();
    received.push(rt.block_on(client.sign(vote_request(false, 0xaa, 1))).expect("signed before any fault"));
    // (`write` itself is not failed here: libfiu cannot single out a file, and the runtime's
    // wake-ups write to an eventfd. The log's ENOSPC on write is a real full filesystem below.)
    let faults = [("posix/io/sync/fdatasync", EIO), ("posix/io/rw/pwrite", ENOSPC), ("posix/io/sync/fdatasync", ENOSPC)];
    for (i, (point, errno)) in faults.into_iter().enumerate() {
        let round = 10 * (i as u64 + 1);
        fiu(&signer, &format!("enable name={point},failinfo={errno}"));
        for attempt in 0..2 {
            // Asked twice: the second ask re-reads what the failed write left; still refused.
            let answer = rt.block_on(client.sign(vote_request(false, 0xaa, round)));
            let e = error_of(&answer);
            assert!(matches!(e.kind, ErrorKind::StoreUnavailable | ErrorKind::Internal), "{point} attempt {attempt}: {e:?}");
        }
        let (status, why) = ready(&signer);
        assert_eq!(status, 503, "{point}: ready while the disk fails: {why}");
        assert!(why.contains("failed") || why.contains("write"), "{point}: /ready does not say why: {why}");
        assert!(signer.child.try_wait().expect("wait").is_none(), "{point}: the signer died");
        fiu(&signer, &format!("disable name={point}"));
        wait_for(&format!("{point}: ready again"), Duration::from_secs(15), || ready(&signer).0 == 200);
        received.push(rt.block_on(client.sign(vote_request(false, 0xaa, round + 1))).expect("signed after the disk recovered"));
    }
    assert!(metric(&signer.metrics, "exclave_log_write_errors_total") >= 1.0, "the log's failures are counted");
    assert!(metric(&signer.metrics, "exclave_store_ambiguous_total") >= 1.0, "the store's failures are counted");
    signer.stop();
    let log: Vec<serde_json::Value> = signer.log();
    for r in &received {
        let sig = hex::encode(&r.signature.0);
        assert!(log.iter().any(|l| l["signature"].as_str() == Some(sig.as_str())), "a received signature is not in the log: {sig}");
    }
    let verify = exclave().args(["audit", "verify", "-q"]).arg(dir.path().join("signing.log")).output().expect("verify");
    assert!(verify.status.success(), "audit verify after disk faults: {verify:?}");
}

/// A signing-log fdatasync fails after the claim was made (the claim store is the TiKV stand-in,
/// in this process: no disk): the reply is withheld, and the record, though written to the page
/// cache, is cut off the file. After the disk recovers, the log holds no record of that
/// signature, which no node received, and verifies.
#[test]
fn a_log_batch_whose_fdatasync_failed_is_cut_off_not_kept() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let cfg = TestConfig::new(dir.path(), "signer-a").min_free_bytes(0).claims(standin_claims(&standin.pd_endpoint(), 2000));
    let mut signer = spawn_under_fiu(dir.path(), cfg);
    let client = signer.client();
    rt.block_on(client.sign(vote_request(false, 0xaa, 1))).expect("signed before the fault");
    fiu(&signer, &format!("enable name=posix/io/sync/fdatasync,failinfo={EIO}"));
    let withheld = rt.block_on(client.sign(vote_request(false, 0xaa, 2)));
    assert_eq!(error_of(&withheld).kind, ErrorKind::Internal, "{withheld:?}");
    fiu(&signer, "disable name=posix/io/sync/fdatasync");
    wait_for("ready again", Duration::from_secs(15), || ready(&signer).0 == 200);
    rt.block_on(client.sign(vote_request(false, 0xaa, 3))).expect("signed after the disk recovered");
    signer.stop();
    let log = signer.log();
    let rounds: Vec<u64> = log.iter().filter(|l| l["decision"] == "signed").filter_map(|l| l["duty"]["round"].as_u64()).collect();
    assert_eq!(rounds, vec![1, 3], "round 2's signature was withheld: its record must not be in the log");
    let verify = exclave().args(["audit", "verify", "-q"]).arg(dir.path().join("signing.log")).output().expect("verify");
    assert!(verify.status.success(), "audit verify: {verify:?}");
}

/// A tmpfs of 1 MiB, mounted for the test and unmounted when dropped (even on failure).
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(at: &std::path::Path) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "exclave-test"]).arg(at).output().expect("mount");
        assert!(out.status.success(), "mounting a tmpfs needs root: {out:?}");
        Self(at.to_path_buf())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The signing log on a filesystem that fills up (a real ENOSPC on write): signing is refused
/// with the log's error, `/ready` says so, nothing is signed that is not logged, and once space
/// is freed the signer logs and signs again; the log verifies.
#[test]
fn a_full_log_filesystem_withholds_signatures_until_space_is_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let fs = SmallFs::mount(&dir.path().join("logfs"));
    let mut cfg = TestConfig::new(dir.path(), "signer-a").min_free_bytes(0);
    cfg.0.signing_log = fs.0.join("signing.log");
    let args = ["serve".into(), "--config".into(), cfg.write().display().to_string()];
    let mut signer = Signer::spawn(&args, dir.path());
    let client = signer.client();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Fill the filesystem but for a few KiB.
    let filler = fs.0.join("filler");
    let mut fill = std::fs::File::create(&filler).expect("filler");
    let _ = std::io::Write::write_all(&mut fill, &vec![0u8; 2 << 20]);
    drop(fill);
    std::fs::remove_file(&filler).expect("rm filler");
    let mut fill = std::fs::File::create(&filler).expect("filler");
    let free = fs2_free(&fs.0);
    std::io::Write::write_all(&mut fill, &vec![0u8; free.saturating_sub(4096) as usize]).expect("fill");
    fill.sync_all().expect("sync filler");
    drop(fill);
    let mut signed = Vec::new();
    let mut refused = None;
    for round in 1..200 {
        match rt.block_on(client.sign(vote_request(false, 0xaa, round))) {
            Ok(r) => signed.push(r),
            Err(e) => {
                refused = Some(error_of(&Err(e)));
                break;
            }
        }
    }
    let refused = refused.expect("the log's filesystem never filled");
    assert_eq!(refused.kind, ErrorKind::Internal, "{refused:?}");
    assert!(refused.message.contains("signing log"), "{}", refused.message);
    let (status, why) = ready(&signer);
    assert!(status == 503 && why.contains("signing log"), "{status} {why}");
    std::fs::remove_file(&filler).expect("free space");
    wait_for("ready again", Duration::from_secs(15), || ready(&signer).0 == 200);
    signed.push(rt.block_on(client.sign(vote_request(false, 0xaa, 500))).expect("signed after space was freed"));
    signer.stop();
    let log = std::fs::read_to_string(fs.0.join("signing.log")).expect("log");
    for r in &signed {
        assert!(log.contains(&hex::encode(&r.signature.0)), "a received signature is not in the log");
    }
    let verify = exclave().args(["audit", "verify", "-q"]).arg(fs.0.join("signing.log")).output().expect("verify");
    assert!(verify.status.success(), "audit verify: {verify:?}");
    drop(signer);
}

/// Bytes free on the filesystem of `path` (`df`).
fn fs2_free(path: &std::path::Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().expect("df");
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df avail")
}
