//! Finding signing-log files, grouping them by signer and ordering each signer's files.

use super::{io_err, AuditError};
use exclave_signing_log::LogLine;
use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::{Path, PathBuf},
};

/// One signer's log: its files in chain order, and the audit keys found beside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSet {
    /// The signer id the files' first lines name.
    pub signer: String,
    /// Files, ordered by their first sequence number.
    pub files: Vec<PathBuf>,
    /// Audit public keys (hex) from `*.audit-pub` files in the files' directories.
    pub beside_keys: Vec<String>,
}

/// A file that was passed over, and why.
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

fn is_side_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with(".audit-key") || name.ends_with(".audit-pub") || name.ends_with(".tmp")
}

/// The first line's sequence number and signer, or why the file is not a log.
fn head(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < buf.len() {
        let got = f.read(&mut buf[n..]).map_err(io_err(path))?;
        if got == 0 {
            break;
        }
        n += got;
        if buf[..n].contains(&b'\n') {
            break;
        }
    }
    if n == 0 {
        return Ok(None);
    }
    let first = buf[..n].split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(LogLine::parse(first).ok().map(|l| (l.seq, l.signer().to_string())))
}

/// Expand `inputs` (files and directories) into per-signer logs. Empty files are skipped;
/// a file named explicitly that is not a log is an error; in a directory it is skipped.
pub fn collect(inputs: &[PathBuf]) -> Result<(Vec<LogSet>, Vec<Skipped>), AuditError> {
    let mut found: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let mut dirs: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(io_err(input))?;
        let candidates = if meta.is_dir() {
            let mut v: Vec<PathBuf> = fs::read_dir(input)
                .map_err(io_err(input))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !is_side_file(p))
                .collect();
            v.sort();
            v
        } else {
            vec![input.clone()]
        };
        for path in candidates {
            match head(&path)? {
                Some((seq, signer)) => {
                    dirs.entry(signer.clone()).or_default().push(path.parent().map(Path::to_path_buf).unwrap_or_default());
                    found.entry(signer).or_default().push((seq, path));
                }
                None if fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 => {
                    skipped.push(Skipped { path, reason: "empty".into() });
                }
                None if !meta.is_dir() => {
                    return Err(AuditError::Usage(format!("{} is not a signing log (its first line is not a record)", path.display())));
                }
                None => skipped.push(Skipped { path, reason: "not a signing log".into() }),
            }
        }
    }
    if found.is_empty() {
        let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        return Err(AuditError::NoLogs(names.join(", ")));
    }
    let sets = found
        .into_iter()
        .map(|(signer, mut files)| {
            files.sort();
            files.dedup();
            let beside_keys = keys_in(dirs.get(&signer).map(Vec::as_slice).unwrap_or_default());
            LogSet { signer, files: files.into_iter().map(|(_, p)| p).collect(), beside_keys }
        })
        .collect();
    Ok((sets, skipped))
}

fn keys_in(dirs: &[PathBuf]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut dirs = dirs.to_vec();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".audit-pub") {
                if let Ok(text) = fs::read_to_string(e.path()) {
                    keys.push(text.trim().trim_start_matches("0x").to_lowercase());
                }
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}
