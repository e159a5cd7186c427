//! Tinybird's own datafile parser (PyPI `tinybird==5.0.3`, which `scripts/test.sh` installs and names in
//! `TINYBIRD_TB`), run on a project's generated files.

use tinybird::project::Project;

/// Writes `project` to a scratch folder and runs `script` (Python, given that folder as `sys.argv[1]`, printing
/// JSON) with `tb`'s Python. `None` when `TINYBIRD_TB` is not set, which fails the test under
/// `TINYBIRD_LOCAL_REQUIRE_TB`.
pub(crate) fn parse(project: &Project, script: &str) -> Option<serde_json::Value> {
    let Some(tb) = std::env::var_os("TINYBIRD_TB").map(std::path::PathBuf::from).filter(|p| p.exists()) else {
        assert!(std::env::var_os("TINYBIRD_LOCAL_REQUIRE_TB").is_none(), "TINYBIRD_TB does not name `tb`");
        eprintln!("skipped: set TINYBIRD_TB to a `tb` executable (pip install tinybird==5.0.3)");
        return None;
    };
    let dir = tempfile::Builder::new().prefix("tb-parse").tempdir().unwrap();
    project.write_to(dir.path()).unwrap();
    let python = tb.with_file_name("python");
    let run = std::process::Command::new(&python).arg("-c").arg(script).arg(dir.path()).output().expect("python runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    Some(serde_json::from_slice(&run.stdout).expect("the script prints JSON"))
}
