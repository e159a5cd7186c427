//! Durability with `--data-dir`: the workspace identity, deployed datafiles and each datasource's rows.
//!
//! Rows are stored one JSON array per line (values in column order, as the JSON output prints them), appended on
//! ingestion (fsynced when the write is acknowledged with `wait=true`) and rewritten after deletes and truncates.

use super::identity::Identity;
use crate::engine::Value;
use crate::format::{OutputOptions, json_value};
use crate::ingest::{IngestColumn, convert};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A data directory.
#[derive(Debug)]
pub(super) struct Store {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
    /// Set when the workspace is deleted: nothing is written any more (a request still holding it writes nothing).
    closed: std::sync::atomic::AtomicBool,
}

const EXACT: OutputOptions = OutputOptions { quote_64bit: true, quote_denormals: true };

impl Store {
    /// Opens (creating) a data directory.
    pub(super) fn open(dir: impl AsRef<Path>) -> std::io::Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("tables"))?;
        fs::create_dir_all(dir.join("project"))?;
        Ok(Store { dir, lock: tokio::sync::Mutex::new(()), closed: std::sync::atomic::AtomicBool::new(false) })
    }

    /// The folder.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// No more writes: the workspace is being deleted.
    pub(super) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_open(&self) -> std::io::Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("the workspace was deleted"));
        }
        Ok(())
    }

    /// Serialises writers.
    pub(super) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    pub(super) fn load_identity(&self) -> Option<Identity> {
        let text = fs::read_to_string(self.dir.join("workspace.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub(super) fn save_identity(&self, identity: &Identity) -> std::io::Result<()> {
        self.check_open()?;
        let text = serde_json::to_string_pretty(identity).map_err(std::io::Error::other)?;
        // It holds the admin token: readable by its owner only.
        write_atomic_private(&self.dir.join("workspace.json"), text.as_bytes())
    }

    /// The deployed datafiles, if any were saved.
    pub(super) fn project_files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        let Ok(entries) = fs::read_dir(self.dir.join("project")) else { return files };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(text) = fs::read_to_string(e.path()) {
                files.push((name, text));
            }
        }
        files.sort();
        files
    }

    /// Replaces the saved datafiles: written to a new folder first, which then takes the old one's place, so a
    /// failure leaves the previous project as it was. Each file keeps its base name, which must be a plain one.
    pub(super) fn save_project(&self, files: &[(String, String)]) -> std::io::Result<()> {
        self.check_open()?;
        let dir = self.dir.join("project");
        let staged = self.dir.join("project.new");
        let _ = fs::remove_dir_all(&staged);
        // Not `create_dir_all`: a deleted workspace's folder is never made again.
        fs::create_dir(&staged)?;
        for (name, text) in files {
            let file = plain_file_name(name).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("invalid datafile name {name:?}"))
            })?;
            write_atomic(&staged.join(file), text.as_bytes())?;
        }
        let old = self.dir.join("project.old");
        let _ = fs::remove_dir_all(&old);
        if dir.exists() {
            fs::rename(&dir, &old)?;
        }
        fs::rename(&staged, &dir)?;
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }

    fn rows_path(&self, ds: &str) -> PathBuf {
        self.dir.join("tables").join(format!("{}.rows", sanitize(ds)))
    }

    pub(super) fn remove_rows(&self, ds: &str) {
        let _ = fs::remove_file(self.rows_path(ds));
    }

    /// Appends rows; with `sync`, returns only once they are on disk.
    pub(super) fn append_rows(
        &self,
        ds: &str,
        columns: &[IngestColumn],
        rows: &[Vec<Value>],
        sync: bool,
    ) -> std::io::Result<()> {
        self.check_open()?;
        let mut file = OpenOptions::new().create(true).append(true).open(self.rows_path(ds))?;
        file.write_all(encode(columns, rows).as_bytes())?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Replaces every stored row.
    pub(super) fn write_rows(&self, ds: &str, columns: &[IngestColumn], rows: &[Vec<Value>]) -> std::io::Result<()> {
        self.check_open()?;
        write_atomic(&self.rows_path(ds), encode(columns, rows).as_bytes())
    }

    /// Reads the stored rows back; a torn last line (crash mid-write) is skipped.
    pub(super) fn load_rows(&self, ds: &str, columns: &[IngestColumn]) -> std::io::Result<Vec<Vec<Value>>> {
        let file = match File::open(self.rows_path(ds)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut rows = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            let Ok(serde_json::Value::Array(values)) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if values.len() != columns.len() {
                continue;
            }
            let row: Result<Vec<Value>, _> = values.iter().zip(columns).map(|(v, c)| convert(v, &c.ty)).collect();
            if let Ok(row) = row {
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

fn encode(columns: &[IngestColumn], rows: &[Vec<Value>]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push('[');
        for (i, (v, c)) in row.iter().zip(columns).enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_value(&mut out, v, &c.ty, EXACT);
        }
        out.push_str("]\n");
    }
    out
}

/// The base name of an uploaded datafile when its name is a plain relative path (`events.datasource`,
/// `datasources/events.datasource`): no empty, `.` or `..` component, not absolute, no backslash or NUL.
pub(super) fn plain_file_name(name: &str) -> Option<&str> {
    if name.is_empty() || name.starts_with('/') || name.contains(['\\', '\0']) {
        return None;
    }
    let mut parts = name.split('/');
    if parts.clone().any(|p| p.is_empty() || p == "." || p == "..") {
        return None;
    }
    parts.next_back().filter(|base| !base.starts_with('.'))
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// [`write_atomic`] for a file holding a secret: mode 0600 on Unix, set before any byte is written.
fn write_atomic_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // `set_permissions` rather than a creation mode, so that a leftover temporary file is tightened too.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    fs::rename(tmp, path)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    fs::rename(tmp, path)
}
