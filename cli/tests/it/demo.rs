//! `exclave demo` from the binary, as a newcomer runs it: it passes, kills and replaces the
//! active node, reports zero equivocations and intact signing logs.

use crate::common;

#[test]
fn the_demo_fails_over_and_finds_no_equivocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::exclave()
        .args(["demo", "--slots", "40", "--slot-ms", "250", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .expect("run exclave demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in ["is killed", "is stopped", "restarts", "equivocations          0 (", "signing logs           intact", "\nPASS"] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    // The restarted node stands by through the signer that is still up: it is refused (not
    // active), never failing. Before its signers' claim-store id was pinned it could not agree
    // on a store with one signer down, and every slot showed `standby FAILED`.
    let restarted = stdout.lines().skip_while(|l| !l.contains("restarts")).skip(1).filter(|l| l.trim_start().starts_with(char::is_numeric));
    let after: Vec<&str> = restarted.collect();
    assert!(!after.is_empty(), "no slot after the restart in:\n{stdout}");
    for line in &after {
        assert!(line.contains("standby") && !line.contains("FAILED"), "the restarted node must stand by without failures: {line}");
    }
    let failover = stdout.lines().find(|l| l.contains("failover")).expect("failover line");
    let slots: u64 = failover.split("came ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("slots");
    assert!(slots <= 3, "failover took {slots} slots: {failover}");
    let again = common::exclave().args(["demo", "--dir"]).arg(dir.path().join("demo")).output().expect("run");
    assert_eq!(again.status.code(), Some(1), "a used directory is refused");
}
