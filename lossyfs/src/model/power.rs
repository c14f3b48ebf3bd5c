//! Directory fsync, the power cut, and freeing inodes nothing can reach any more.

use std::collections::{HashMap, HashSet};

use super::{Body, CutReport, Entries, Model, ROOT};
use crate::FsError;

/// The byte positions where `a` and `b` differ, a position in only one of them included.
fn differing_bytes(a: &[u8], b: &[u8]) -> u64 {
    let common = a.len().min(b.len());
    let changed = a.iter().zip(b).filter(|(x, y)| x != y).count();
    (changed + a.len().max(b.len()) - common) as u64
}

/// The names that map differently (or only on one side) in `a` and `b`.
fn differing_entries(a: &Entries, b: &Entries) -> usize {
    let changed_or_removed = a.iter().filter(|(name, ino)| b.get(*name) != Some(*ino)).count();
    let added = b.keys().filter(|name| !a.contains_key(*name)).count();
    changed_or_removed + added
}

impl Model {
    /// `fsync` of a directory: its current entries become its durable entries. The inodes those
    /// entries name keep their own state (a file's bytes still need the file's own fsync).
    pub(crate) fn fsyncdir(&mut self, ino: u64) -> Result<(), FsError> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir { entries, durable, .. } => durable.clone_from(entries),
            Body::File { .. } => return Err(FsError::NotDir),
        }
        self.stats.fsyncdirs += 1;
        self.collect_garbage();
        Ok(())
    }

    /// The power cut: every directory's entries go back to its durable entries, every file's
    /// bytes to its durable bytes; inodes no longer reachable from the root (and not held
    /// open) are freed.
    pub(crate) fn cut_power(&mut self) -> CutReport {
        let mut undone_entries = HashMap::new();
        for (ino, inode) in &mut self.inodes {
            if let Body::Dir { entries, durable, .. } = &mut inode.body {
                let undone = differing_entries(entries, durable);
                if undone > 0 {
                    undone_entries.insert(*ino, undone);
                    entries.clone_from(durable);
                }
            }
        }
        self.collect_garbage();
        self.fix_parents();
        let mut report = CutReport {
            entries_rolled_back: undone_entries.iter().filter(|(ino, _)| self.inodes.contains_key(ino)).map(|(_, n)| n).sum(),
            ..CutReport::default()
        };
        for inode in self.inodes.values_mut() {
            if let Body::File { current, durable } = &mut inode.body {
                if current != durable {
                    report.files_rolled_back += 1;
                    report.bytes_discarded += differing_bytes(current, durable);
                    current.clone_from(durable);
                }
            }
        }
        self.stats.power_cuts += 1;
        report
    }

    /// Free every inode that neither the root (through current or durable entries, since a
    /// power cut can bring either back) nor an open file handle reaches.
    pub(crate) fn collect_garbage(&mut self) {
        let mut live = HashSet::new();
        let mut todo: Vec<u64> = std::iter::once(ROOT).chain(self.files.values().map(|handle| handle.ino)).collect();
        while let Some(ino) = todo.pop() {
            if !live.insert(ino) {
                continue;
            }
            if let Some(Body::Dir { entries, durable, .. }) = self.inodes.get(&ino).map(|inode| &inode.body) {
                todo.extend(entries.values().chain(durable.values()).filter(|child| !live.contains(*child)));
            }
        }
        self.inodes.retain(|ino, _| live.contains(ino));
    }

    /// After a cut, point each directory's `..` at the directory that now names it.
    fn fix_parents(&mut self) {
        let mut todo = vec![ROOT];
        let mut seen = HashSet::new();
        while let Some(dir) = todo.pop() {
            if !seen.insert(dir) {
                continue;
            }
            let children: Vec<u64> = match self.inodes.get(&dir).map(|inode| &inode.body) {
                Some(Body::Dir { entries, .. }) => entries.values().copied().collect(),
                _ => continue,
            };
            for child in children {
                if let Some(Body::Dir { parent, .. }) = self.inodes.get_mut(&child).map(|inode| &mut inode.body) {
                    *parent = dir;
                    todo.push(child);
                }
            }
        }
    }
}
