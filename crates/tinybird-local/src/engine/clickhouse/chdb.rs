//! ClickHouse in process: chDB's shared library (PyPI `chdb-core`) loaded at run time as an ADBC driver.
//!
//! What this relies on was measured and is written down in `design/chdb-adbc.md`: the library needs the Python C
//! API's symbols in the global scope (a `libpython3.x.so` opened with `RTLD_GLOBAL`; no interpreter is started), is
//! opened with `RTLD_DEEPBIND` so its bundled C++ runtime stays its own, and boots one engine per process in its first
//! connection, installing fatal-signal handlers that are put back to what they were.

use adbc_core::options::{AdbcVersion, OptionDatabase, OptionValue};
use adbc_core::{Connection as _, Database as _, Driver as _, Statement as _};
use adbc_driver_manager::{ManagedConnection, ManagedDatabase, ManagedDriver};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The chDB release this server is built and tested against.
pub const CHDB_VERSION: &str = "26.9.0";
/// The ClickHouse version that release embeds (its `SELECT version()` starts with this).
pub const CLICKHOUSE_SERIES: &str = "26.9.";
/// The command that installs it.
pub const PIP_INSTALL: &str = "python3 -m pip install --no-deps chdb-core==26.9.0";

/// Environment variable naming chDB's library (`_chdb.abi3.so`, the `chdb` package directory, or a directory
/// holding `chdb/`, such as a `pip install --target` directory).
pub const CHDB_ENV: &str = "TINYBIRD_LOCAL_CHDB";
/// Environment variable naming the `libpython3.x.so` whose symbols chDB needs.
pub const LIBPYTHON_ENV: &str = "TINYBIRD_LOCAL_LIBPYTHON";

/// Where chDB and libpython were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChdbPaths {
    /// `chdb/_chdb.abi3.so`.
    pub library: PathBuf,
    /// `libpython3.x.so.1.0`.
    pub libpython: PathBuf,
}

/// Explicit locations (flags); unset ones come from the environment, then from asking `python3`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChdbLocation {
    /// chDB's library or a directory holding it.
    pub library: Option<PathBuf>,
    /// libpython's shared library.
    pub libpython: Option<PathBuf>,
}

/// The loaded engine: the driver's one database handle, shared by every [`super::ClickHouseEngine`] in the process.
pub struct Chdb {
    /// Taken (and released) at process exit, before chDB's own static destructors run.
    database: Mutex<Option<ManagedDatabase>>,
    /// `SELECT version()`.
    pub version: String,
    /// Where it was loaded from.
    pub paths: ChdbPaths,
    /// Serialises the first connection's start-up (it installs signal handlers, which are put back).
    boot: Mutex<bool>,
    /// A connection held for the life of the process: chDB shuts its engine down (and loses every in-memory table)
    /// when its last connection closes.
    keeper: Mutex<Option<ManagedConnection>>,
}

impl std::fmt::Debug for Chdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chdb").field("version", &self.version).field("paths", &self.paths).finish()
    }
}

static LOADED: OnceLock<Result<Arc<Chdb>, String>> = OnceLock::new();

/// Every pool, so their idle connections can be closed at exit.
static POOLS: Mutex<Vec<std::sync::Weak<Pool>>> = Mutex::new(Vec::new());

/// Set at exit: no new connection opens after it.
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Closes every connection and the database at process exit, so chDB shuts its engine down in order before its
/// static destructors run (otherwise they tear down an engine whose threads still run, and the process crashes).
extern "C" fn shut_down() {
    CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
    let pools: Vec<Arc<Pool>> =
        POOLS.lock().map(|p| p.iter().filter_map(std::sync::Weak::upgrade).collect()).unwrap_or_default();
    for pool in pools {
        if let Ok(mut idle) = pool.idle.lock() {
            idle.clear();
        }
    }
    if let Some(Ok(chdb)) = LOADED.get() {
        if let Ok(mut keeper) = chdb.keeper.lock() {
            keeper.take();
        }
        if let Ok(mut database) = chdb.database.lock() {
            database.take();
        }
    }
}

/// Loads chDB once per process (later calls return the same engine; their `location` must agree or be empty).
pub fn load(location: &ChdbLocation) -> Result<Arc<Chdb>, String> {
    let loaded = LOADED.get_or_init(|| locate(location).and_then(|paths| open(paths).map(Arc::new)));
    let chdb = loaded.clone()?;
    if let Some(asked) = &location.library {
        let asked = library_in(asked).unwrap_or_else(|| asked.clone());
        if !same_file(&asked, &chdb.paths.library) {
            return Err(format!(
                "chDB is already loaded in this process from {}; one process runs one chDB, so {} cannot be used too",
                chdb.paths.library.display(),
                asked.display()
            ));
        }
    }
    Ok(chdb)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `_chdb.abi3.so` inside a path: the file itself, `DIR/_chdb.abi3.so` or `DIR/chdb/_chdb.abi3.so`.
fn library_in(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    [path.join("_chdb.abi3.so"), path.join("chdb").join("_chdb.abi3.so")].into_iter().find(|p| p.is_file())
}

/// Finds both libraries: explicit paths, then the environment, then `python3`'s own answer.
pub fn locate(location: &ChdbLocation) -> Result<ChdbPaths, String> {
    let env_path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let explicit_library = location.library.clone().or_else(|| env_path(CHDB_ENV));
    let explicit_python = location.libpython.clone().or_else(|| env_path(LIBPYTHON_ENV));
    let asked = (explicit_library.is_none() || explicit_python.is_none()).then(ask_python);
    let library = match explicit_library {
        Some(path) => library_in(&path).ok_or_else(|| {
            format!(
                "chDB's library (_chdb.abi3.so) was not found at {} ({CHDB_ENV} or --chdb); install it with `{PIP_INSTALL}`",
                path.display()
            )
        })?,
        None => match asked.as_ref().and_then(|a| a.as_ref().ok()).and_then(|a| a.chdb.clone()) {
            Some(path) if path.is_file() => path,
            _ => {
                let why = match &asked {
                    Some(Err(e)) => format!(" ({e})"),
                    _ => String::new(),
                };
                return Err(format!(
                    "the ClickHouse engine needs chDB {CHDB_VERSION}, which python3 cannot find{why}: install it with \
                     `{PIP_INSTALL}`, or point {CHDB_ENV} (or --chdb) at its _chdb.abi3.so"
                ));
            }
        },
    };
    let libpython = match explicit_python {
        Some(path) if path.is_file() => path,
        Some(path) => {
            return Err(format!("libpython was not found at {} ({LIBPYTHON_ENV} or --libpython)", path.display()));
        }
        None => match asked
            .as_ref()
            .and_then(|a| a.as_ref().ok())
            .and_then(|a| a.libpython.clone())
            .or_else(system_libpython)
        {
            Some(path) => path,
            None => {
                return Err(format!(
                    "chDB needs the symbols of a shared libpython3 (libpython3.x.so), and none was found: install one \
                     (Debian/Ubuntu: `apt-get install libpython3-dev`) or point {LIBPYTHON_ENV} (or --libpython) at it"
                ));
            }
        },
    };
    Ok(ChdbPaths { library, libpython })
}

#[derive(Debug, serde::Deserialize)]
struct PythonAnswer {
    chdb: Option<PathBuf>,
    libpython: Option<PathBuf>,
}

/// Asks `python3` (or `$PYTHON`) where `chdb` is installed, without importing it (its `__init__` starts an engine),
/// and where its shared libpython is.
fn ask_python() -> Result<PythonAnswer, String> {
    const SCRIPT: &str = r#"
import importlib.util, json, os, sysconfig
so = None
try:
    spec = importlib.util.find_spec("chdb")
    if spec is not None and spec.submodule_search_locations:
        so = os.path.join(list(spec.submodule_search_locations)[0], "_chdb.abi3.so")
except Exception:
    pass
libdir = sysconfig.get_config_var("LIBDIR") or ""
py = None
for name in (sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")):
    if name and name.endswith((".so", ".so.1.0", ".so.1")) and os.path.exists(os.path.join(libdir, name)):
        py = os.path.join(libdir, name)
        break
print(json.dumps({"chdb": so, "libpython": py}))
"#;
    let python = std::env::var("PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let output = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("could not run {python}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{python} failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("unexpected answer from {python}: {e}"))
}

/// A shared libpython3 in the usual system places (any 3.x: only its symbols are used).
fn system_libpython() -> Option<PathBuf> {
    let dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libpython3.") && (name.ends_with(".so") || name.contains(".so."))
        })
        .collect();
    found.sort();
    found.pop()
}

fn open(paths: ChdbPaths) -> Result<Chdb, String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading libpython only runs its ELF initialisers (no interpreter starts); chDB's library is opened
    // as its own Python extension loader opens it. Both stay loaded for the life of the process.
    let library = unsafe {
        let python = Library::open(Some(&paths.libpython), RTLD_NOW | RTLD_GLOBAL)
            .map_err(|e| format!("could not load libpython from {}: {e}", paths.libpython.display()))?;
        std::mem::forget(python);
        Library::open(Some(&paths.library), RTLD_NOW | RTLD_LOCAL | libc::RTLD_DEEPBIND).map_err(|e| {
            format!("could not load chDB from {}: {e} (reinstall it with `{PIP_INSTALL}`)", paths.library.display())
        })?
    };
    // SAFETY: `AdbcDriverInit` has the ADBC driver-init signature; the library is never unloaded.
    let init: adbc_ffi::FFI_AdbcDriverInitFunc = unsafe {
        *library.get::<adbc_ffi::FFI_AdbcDriverInitFunc>(b"AdbcDriverInit\0").map_err(|e| {
            format!(
                "{} is not an ADBC driver ({e}); tinybird-local needs chDB {CHDB_VERSION}: `{PIP_INSTALL}`",
                paths.library.display()
            )
        })?
    };
    std::mem::forget(library);
    let mut driver = ManagedDriver::load_static(&init, AdbcVersion::V110).map_err(adbc_text)?;
    let database = driver
        .new_database_with_opts([(OptionDatabase::Uri, OptionValue::String("chdb://".into()))])
        .map_err(adbc_text)?;
    let mut chdb = Chdb {
        database: Mutex::new(Some(database)),
        version: String::new(),
        paths,
        boot: Mutex::new(false),
        keeper: Mutex::new(None),
    };
    let mut conn = chdb.connect()?;
    let batches = query(&mut conn, "SELECT version()").map_err(|e| e.to_string())?;
    let version = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| crate::engine::value_at(b.column(0).as_ref(), 0))
        .and_then(|v| match v {
            crate::engine::Value::Str(s) => Some(s),
            _ => None,
        })
        .unwrap_or_default();
    if !version.starts_with(CLICKHOUSE_SERIES) {
        return Err(format!(
            "{} is ClickHouse {version}; tinybird-local's ClickHouse engine is built for chDB {CHDB_VERSION} (ClickHouse \
             {CLICKHOUSE_SERIES}x): `{PIP_INSTALL}`",
            chdb.paths.library.display()
        ));
    }
    chdb.version = version;
    chdb.keeper = Mutex::new(Some(conn));
    // SAFETY: registering a plain `extern "C"` function with no arguments.
    unsafe {
        libc::atexit(shut_down);
    }
    Ok(chdb)
}

fn adbc_text(e: adbc_core::error::Error) -> String {
    e.message.trim_start_matches("[chdb] ").to_string()
}

/// An error from ClickHouse: its code name (`SYNTAX_ERROR`) and message, as ClickHouse wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChError {
    /// The exception's name, the last parenthesised word of the message (`UNKNOWN_IDENTIFIER`), if any.
    pub name: Option<String>,
    /// `DB::Exception: … (NAME)`, without chDB's `[chdb] Code: N.` prefix.
    pub message: String,
}

impl std::fmt::Display for ChError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ChError {
    fn from_adbc(e: adbc_core::error::Error) -> ChError {
        ChError::from_text(&e.message)
    }

    fn from_text(text: &str) -> ChError {
        let text = text.trim().trim_start_matches("[chdb]").trim();
        // "Code: 62. DB::Exception: …" → "DB::Exception: …".
        let text = match text.strip_prefix("Code: ") {
            Some(rest) => rest.split_once(". ").map(|(_, m)| m).unwrap_or(rest),
            None => text,
        };
        // ClickHouse appends a version and a stack trace hint in some messages; keep the first paragraph.
        let message = text.split("\n\n").next().unwrap_or(text).trim().to_string();
        let name = message
            .rsplit_once('(')
            .map(|(_, n)| n.trim_end_matches([')', '.', ' ']).to_string())
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()));
        ChError { name, message }
    }
}

impl Chdb {
    /// A new connection (the first one boots the engine; the signal handlers it installs are put back).
    pub fn connect(&self) -> Result<ManagedConnection, String> {
        let new_connection = || -> Result<ManagedConnection, String> {
            if CLOSED.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("the process is exiting".into());
            }
            let database = self.database.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            database.as_ref().ok_or("the process is exiting")?.new_connection().map_err(adbc_text)
        };
        let mut booted = self.boot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *booted {
            drop(booted);
            return new_connection();
        }
        let saved = SavedSignals::save();
        let conn = new_connection();
        saved.restore();
        *booted = conn.is_ok();
        conn
    }
}

/// The handlers of the fatal signals ClickHouse takes over when it boots.
struct SavedSignals(Vec<(libc::c_int, libc::sigaction)>);

impl SavedSignals {
    const SIGNALS: [libc::c_int; 8] = [
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGTSTP,
        libc::SIGSYS,
    ];

    fn save() -> SavedSignals {
        let mut saved = Vec::with_capacity(Self::SIGNALS.len());
        for signal in Self::SIGNALS {
            // SAFETY: reading the current disposition into a zeroed sigaction.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut old) == 0 {
                    saved.push((signal, old));
                }
            }
        }
        SavedSignals(saved)
    }

    fn restore(self) {
        for (signal, old) in self.0 {
            // SAFETY: putting back a disposition read by `save`.
            unsafe {
                libc::sigaction(signal, &old, std::ptr::null_mut());
            }
        }
    }
}

fn debug(sql: &str, e: adbc_core::error::Error) -> ChError {
    if std::env::var_os("TB_CH_DEBUG").is_some() {
        eprintln!("CHDEBUG {sql}: {}", e.message);
    }
    ChError::from_adbc(e)
}

/// Runs one statement that returns rows.
pub fn query(conn: &mut ManagedConnection, sql: &str) -> Result<Vec<RecordBatch>, ChError> {
    let mut statement = conn.new_statement().map_err(ChError::from_adbc)?;
    statement.set_sql_query(sql).map_err(ChError::from_adbc)?;
    let reader = statement.execute().map_err(|e| debug(sql, e))?;
    let _schema = reader.schema();
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch.map_err(|e| ChError::from_text(&e.to_string()))?);
    }
    Ok(batches)
}

/// Runs one statement that returns no rows (DDL, `INSERT`, `SET`).
pub fn execute(conn: &mut ManagedConnection, sql: &str) -> Result<(), ChError> {
    let mut statement = conn.new_statement().map_err(ChError::from_adbc)?;
    statement.set_sql_query(sql).map_err(ChError::from_adbc)?;
    statement.execute_update().map_err(|e| debug(sql, e))?;
    Ok(())
}

/// Appends a batch to `database.table` through ADBC's bulk ingestion: Arrow columns, no text to parse.
pub fn ingest(conn: &mut ManagedConnection, database: &str, table: &str, batch: RecordBatch) -> Result<(), ChError> {
    use adbc_core::Optionable as _;
    use adbc_core::options::{IngestMode, OptionStatement};
    let mut statement = conn.new_statement().map_err(ChError::from_adbc)?;
    statement
        .set_option(OptionStatement::TargetTable, OptionValue::String(table.into()))
        .map_err(ChError::from_adbc)?;
    statement
        .set_option(OptionStatement::TargetDbSchema, OptionValue::String(database.into()))
        .map_err(ChError::from_adbc)?;
    statement.set_option(OptionStatement::IngestMode, IngestMode::Append.into()).map_err(ChError::from_adbc)?;
    statement.bind(batch).map_err(ChError::from_adbc)?;
    statement.execute_update().map_err(|e| debug(table, e))?;
    Ok(())
}

/// Connections that start with the same statements (`USE db`, `SET readonly = 2`), reused.
pub struct Pool {
    chdb: Arc<Chdb>,
    setup: Vec<String>,
    idle: Mutex<Vec<ManagedConnection>>,
}

impl Pool {
    /// A pool whose connections each run `setup` once when opened.
    pub fn new(chdb: Arc<Chdb>, setup: Vec<String>) -> Arc<Pool> {
        let pool = Arc::new(Pool { chdb, setup, idle: Mutex::new(Vec::new()) });
        if let Ok(mut pools) = POOLS.lock() {
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(&pool));
        }
        pool
    }

    /// An idle connection, or a new one.
    pub fn take(&self) -> Result<ManagedConnection, ChError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop() {
            return Ok(conn);
        }
        let mut conn = self.chdb.connect().map_err(|e| ChError { name: None, message: e })?;
        for statement in &self.setup {
            execute(&mut conn, statement)?;
        }
        Ok(conn)
    }

    /// Returns a connection after a statement that succeeded (one that failed is dropped, as its state is unknown).
    pub fn give_back(&self, conn: ManagedConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < 64 && !CLOSED.load(std::sync::atomic::Ordering::SeqCst) {
            idle.push(conn);
        }
    }

    /// Runs `f` with a connection on a blocking thread.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ManagedConnection) -> Result<T, ChError> + Send + 'static,
    ) -> Result<T, ChError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.take()?;
            let result = f(&mut conn);
            if result.is_ok() {
                pool.give_back(conn);
            }
            result
        })
        .await
        .map_err(|e| ChError { name: None, message: format!("the ClickHouse engine's worker failed: {e}") })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_clickhouse_text_without_chdb_prefix() {
        let e = ChError::from_text(
            "[chdb] Code: 62. DB::Exception: Syntax error: failed at position 1 (SELEC): SELEC 1. Expected one of: ... (SYNTAX_ERROR)",
        );
        assert_eq!(e.name.as_deref(), Some("SYNTAX_ERROR"));
        assert!(e.message.starts_with("DB::Exception: Syntax error"), "{}", e.message);
        let e = ChError::from_text(
            "Code: 60. DB::Exception: Unknown table expression identifier 'x' in scope SELECT * FROM x. (UNKNOWN_TABLE)",
        );
        assert_eq!(e.name.as_deref(), Some("UNKNOWN_TABLE"));
    }

    #[test]
    fn missing_library_names_the_pip_line() {
        let location = ChdbLocation { library: Some("/nonexistent/chdb".into()), libpython: None };
        let e = locate(&location).unwrap_err();
        assert!(e.contains("/nonexistent/chdb") && e.contains(PIP_INSTALL), "{e}");
        let location =
            ChdbLocation { library: Some(std::env::temp_dir()), libpython: Some("/nonexistent/libpython3.so".into()) };
        let e = locate(&location).unwrap_err();
        assert!(e.contains("_chdb.abi3.so") || e.contains("libpython"), "{e}");
    }
}
