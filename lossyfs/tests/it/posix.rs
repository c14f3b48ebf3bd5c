//! What programs here rely on besides durability: modes, large random-access files, statfs,
//! flock, stat sizes.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};

use crate::{create_durable, sync_dir, Fixture};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode()
}

#[test]
fn modes_are_kept_and_reported() {
    let fx = Fixture::mount();
    let key = fx.path("key");
    drop(OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key).expect("create 0600"));
    assert_eq!(mode(&key), libc::S_IFREG | 0o600);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).expect("chmod");
    assert_eq!(mode(&key) & 0o7777, 0o640);
    fs::DirBuilder::new().mode(0o700).create(fx.path("d")).expect("mkdir 0700");
    assert_eq!(mode(&fx.path("d")), libc::S_IFDIR | 0o700);
    // Modes are never rolled back (the crate docs): only the name needs the directory fsync.
    sync_dir(fx.mount.path());
    fx.mount.cut_power();
    assert_eq!(mode(&key) & 0o7777, 0o640);
    assert_eq!(fs::metadata(&key).expect("stat").len(), 0);
}

/// A deterministic generator for offsets and bytes (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn a_large_file_with_random_pwrites_reads_back_and_rolls_back() {
    const SIZE: u64 = 3 << 20;
    let fx = Fixture::mount();
    let file = create_durable(&fx.path("big"));
    let mut reference = Vec::new();
    let mut rng = Rng(7);
    let mut synced = Vec::new();
    for round in 0..400 {
        let offset = rng.below(SIZE);
        let len = 1 + rng.below(if round % 10 == 0 { 300_000 } else { 5_000 });
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        file.write_all_at(&data, offset).expect("pwrite");
        let (start, end) = (offset as usize, (offset + len) as usize);
        if reference.len() < end {
            reference.resize(end, 0);
        }
        reference[start..end].copy_from_slice(&data);
        if round == 250 {
            file.sync_data().expect("fdatasync");
            synced.clone_from(&reference);
        }
    }
    assert!(reference.len() > 1 << 20);
    assert_eq!(fs::metadata(fx.path("big")).expect("stat").len(), reference.len() as u64);
    assert!(fx.read("big").expect("exists") == reference, "contents differ from the reference");
    let mut middle = vec![0; 100_000];
    file.read_exact_at(&mut middle, 1_000_000).expect("pread");
    assert!(middle == reference[1_000_000..1_100_000]);
    drop(file);
    fx.mount.cut_power();
    assert!(fx.read("big").expect("exists") == synced, "after the cut: not the fdatasync'd contents");
}

#[test]
fn statfs_reports_plenty_of_free_space() {
    let fx = Fixture::mount();
    let stat = nix::sys::statvfs::statvfs(fx.mount.path()).expect("statvfs");
    let free = stat.blocks_available() * stat.fragment_size();
    assert!(free >= 1 << 30, "{free} bytes free");
}

#[test]
fn flock_is_exclusive_across_opens() {
    use nix::fcntl::{Flock, FlockArg};
    let fx = Fixture::mount();
    let path = fx.path("lock");
    drop(create_durable(&path));
    let first = Flock::lock(fs::File::open(&path).expect("open"), FlockArg::LockExclusiveNonblock).expect("first lock");
    let second = Flock::lock(fs::File::open(&path).expect("open"), FlockArg::LockExclusiveNonblock);
    assert_eq!(second.map(|_| ()).map_err(|(_, e)| e), Err(nix::errno::Errno::EWOULDBLOCK));
    drop(first);
    Flock::lock(fs::File::open(&path).expect("open"), FlockArg::LockExclusiveNonblock).expect("lock after unlock");
}

#[test]
fn access_and_a_mount_point_that_is_not_a_directory() {
    let fx = Fixture::mount();
    assert!(fx.mount.path().exists());
    fs::write(fx.path("f"), b"").expect("create");
    assert!(nix::unistd::access(&fx.path("f"), nix::unistd::AccessFlags::F_OK).is_ok());
    let not_dir = tempfile::NamedTempFile::new().expect("temp file");
    assert!(exclave_lossyfs::LossyMount::mount(not_dir.path()).is_err());
}

#[test]
fn fs_copy_and_seek_end() {
    use std::io::{Seek, SeekFrom};
    let fx = Fixture::mount();
    fs::write(fx.path("a"), b"hello").expect("write");
    fs::copy(fx.path("a"), fx.path("b")).expect("copy");
    assert_eq!(fx.read("b").as_deref(), Some(&b"hello"[..]));
    let mut f = OpenOptions::new().read(true).write(true).open(fx.path("b")).expect("open");
    assert_eq!(f.seek(SeekFrom::End(0)).expect("seek"), 5);
    f.write_all_at(b"!", 5).expect("pwrite");
    assert_eq!(f.seek(SeekFrom::End(0)).expect("seek after growth"), 6);
}

#[test]
fn dropping_the_mount_while_a_file_is_open_detaches_it() {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = exclave_lossyfs::LossyMount::mount(dir.path()).expect("mount");
    let mut open = fs::File::create(dir.path().join("f")).expect("create");
    drop(mount);
    let dev = |p: &std::path::Path| fs::metadata(p).expect("stat").dev();
    assert_eq!(dev(dir.path()), dev(dir.path().parent().expect("parent")), "still mounted");
    open.write_all(b"the detached filesystem still serves open files").expect("write");
    drop(open);
    assert!(fs::read_dir(dir.path()).expect("readdir").next().is_none());
}
