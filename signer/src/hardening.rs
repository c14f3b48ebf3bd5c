//! Process hardening at start-up, before any key is read: no core dumps, whatever limit the
//! process was started with (`RLIMIT_CORE` 0, soft and hard, and the process marked not
//! dumpable, which also keeps other processes of the same user from `ptrace`-attaching to it),
//! and its memory locked (`mlockall`, current and future pages as they are touched) where
//! `RLIMIT_MEMLOCK` or `CAP_IPC_LOCK` allows, so key material is not written to swap.
//!
//! What it does not do: protect against root on the host, which can read `/proc/<pid>/mem`,
//! load kernel modules or replace the binary (docs/security.md).

use rustix::{
    mm::{mlockall, MlockAllFlags},
    process::{getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit},
};

/// What start-up hardening achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardened {
    /// Core dumps are off (`RLIMIT_CORE` 0 and not dumpable).
    pub core_dumps_off: Result<(), String>,
    /// Memory is locked, or why not.
    pub memory_locked: Result<(), String>,
}

/// Turn core dumps off and lock memory; log what was and was not done.
pub fn harden_process() -> Hardened {
    let core_dumps_off = no_core_dumps();
    let memory_locked = lock_memory();
    match &core_dumps_off {
        Ok(()) => tracing::info!("core dumps off (RLIMIT_CORE 0, not dumpable)"),
        Err(e) => tracing::error!(error = %e, "could not turn core dumps off: a crash could write key material to disk"),
    }
    match &memory_locked {
        Ok(()) => tracing::info!("process memory locked (mlockall): key material is not swapped out"),
        Err(e) => tracing::warn!(
            error = %e,
            "process memory not locked: key material may be swapped out; raise RLIMIT_MEMLOCK (systemd LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK"
        ),
    }
    Hardened { core_dumps_off, memory_locked }
}

fn no_core_dumps() -> Result<(), String> {
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }).map_err(|e| format!("setrlimit(RLIMIT_CORE, 0): {e}"))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(|e| format!("prctl(PR_SET_DUMPABLE, 0): {e}"))
}

fn lock_memory() -> Result<(), String> {
    mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT).map_err(|e| {
        let limit = getrlimit(Resource::Memlock).current.map_or("unlimited".into(), |b| format!("{b} bytes"));
        format!("mlockall: {e} (RLIMIT_MEMLOCK {limit})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a child process (hardening is process-wide): core dumps end up off whatever the start
    /// limit was, and the process is no longer dumpable.
    #[test]
    fn core_dumps_are_off_after_hardening() {
        if std::env::var_os("EXCLAVE_HARDENING_CHILD").is_none() {
            let exe = std::env::current_exe().expect("test binary");
            let out = std::process::Command::new(exe)
                .args(["--exact", "hardening::tests::core_dumps_are_off_after_hardening", "--nocapture"])
                .env("EXCLAVE_HARDENING_CHILD", "1")
                .output()
                .expect("run the child");
            assert!(out.status.success(), "child: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return;
        }
        // Start from a generous limit, as a shell with `ulimit -c unlimited` would.
        let _ =
            setrlimit(Resource::Core, Rlimit { current: getrlimit(Resource::Core).maximum, maximum: getrlimit(Resource::Core).maximum });
        let hardened = harden_process();
        assert_eq!(hardened.core_dumps_off, Ok(()));
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        assert_eq!(rustix::process::dumpable_behavior().expect("prctl"), DumpableBehavior::NotDumpable);
        // Memory locking depends on the limit and capabilities: either way the answer names it.
        if let Err(why) = &hardened.memory_locked {
            assert!(why.contains("RLIMIT_MEMLOCK"), "{why}");
        }
    }
}
