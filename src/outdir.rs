//! The results directory (`--out`): what emu may replace, and how it
//! writes without ever leaving half a result behind.
//!
//! - `--out` must name a directory by a name of its own: not `.`, `..`, a
//!   path ending in them, or `/`.
//! - An existing `--out` is replaced only when emu wrote it: a directory
//!   whose `run.toml` starts with emu's header and that holds nothing but
//!   the files a run writes (and `manifests/` with files, and the report:
//!   `plots/` holding only the chart files it writes, an `index.html`
//!   that starts as the report's page does). An empty
//!   directory is replaced too. Any other directory is refused unless
//!   `--force` is given; a file, a device or a symbolic link never is.
//! - Results are written into a new temporary directory beside `--out`
//!   (`.NAME.tmp-PID`, made with `create_dir`, so nothing that exists is
//!   reused) and renamed into place at the end. The temporary directory is
//!   removed on every failure path and on SIGINT, SIGTERM and SIGHUP.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The files `emu reach` writes (with `run.toml`): a directory of them is
/// emu's to replace too.
pub const REACH_FILES: [&str; 1] = ["reach.csv"];

/// Every file a run writes into its directory, besides `manifests/`.
pub const RESULT_FILES: [&str; 14] = [
    "policies.csv",
    "programming.csv",
    "timeseries_failures.csv",
    "pods.csv",
    "summary.csv",
    "hops.csv",
    "endpoints.csv",
    "balance.csv",
    "failures.csv",
    "sources.csv",
    "services.csv",
    "cluster.csv",
    "timeseries.csv",
    "run.toml",
];

/// The files a shard directory (`emu run --shard`) holds besides the
/// tables and run.toml.
pub const SHARD_FILES: [&str; 2] = ["manifest.toml", "warnings.txt"];

/// The first line of every `run.toml` emu writes starts with this.
pub const RUN_TOML_HEADER: &str = "# Resolved by emu";

/// Temporary directories to remove if the process is interrupted.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handler that removes pending temporary directories on
/// SIGINT, SIGTERM and SIGHUP, then exits with 130.
pub fn install_signal_cleanup() {
    let _ = ctrlc::set_handler(|| {
        // Exits while holding the registry, so no new directory is made.
        let _held = remove_pending();
        // Not eprintln: stderr may be a closed pipe, and a panic here
        // would leave the process running.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"interrupted: no results written\n");
        std::process::exit(130);
    });
}

/// Removes every pending temporary directory; returns the locked (now
/// empty) registry.
fn remove_pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for p in pending.iter() {
        // A writer may still be adding a file: try a few times.
        for _ in 0..3 {
            if fs::remove_dir_all(p).is_ok() || !p.exists() {
                break;
            }
        }
    }
    pending.clear();
    pending
}

/// Checks that `out` may receive results: exit 2 material when not.
pub fn check(out: &Path, force: bool) -> Result<(), String> {
    let shown = out.display();
    if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
        return Err(format!(
            "--out {shown}: name the results directory itself (a path that does not end in `.`, `..` or `/`)"
        ));
    }
    let meta = match fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("--out {shown}: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Err(format!("--out {shown} is a symbolic link: emu replaces only directories it wrote itself"));
    }
    if !meta.is_dir() {
        return Err(format!(
            "--out {shown} is not a directory: emu writes a directory of results and never replaces a file or a device"
        ));
    }
    match foreign_entry(out) {
        None => Ok(()),
        Some(_) if force => Ok(()),
        Some(what) => Err(format!(
            "--out {shown} is a directory emu did not write ({what}): choose another --out, or add --force to replace it"
        )),
    }
}

/// Why `dir` is not a results directory of emu's (or empty), if it is not.
fn foreign_entry(dir: &Path) -> Option<String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Some(format!("cannot list it: {e}")),
    };
    let mut any = false;
    for e in entries {
        let Ok(e) = e else { return Some("cannot list it".into()) };
        any = true;
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { return Some(format!("cannot read `{name}`")) };
        let ours = match name.as_str() {
            "manifests" => kind.is_dir() && only_files(&e.path(), |_| true),
            "plots" => kind.is_dir() && only_files(&e.path(), crate::plot::is_chart_file),
            "index.html" => kind.is_file() && fs::read(e.path()).is_ok_and(|t| crate::plot::is_report_page(&t)),
            n => kind.is_file() && [&RESULT_FILES[..], &REACH_FILES, &SHARD_FILES].iter().any(|f| f.contains(&n)),
        };
        if !ours {
            return Some(format!("it holds `{name}`"));
        }
    }
    if !any {
        return None;
    }
    let head = fs::read(dir.join("run.toml")).unwrap_or_default();
    if head.starts_with(RUN_TOML_HEADER.as_bytes()) {
        None
    } else {
        Some("it has no run.toml written by emu".into())
    }
}

/// Whether `dir` holds only files, each named as `named` allows.
fn only_files(dir: &Path, named: impl Fn(&str) -> bool) -> bool {
    fs::read_dir(dir).is_ok_and(|it| {
        it.into_iter().all(|e| {
            e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file()) && named(&e.file_name().to_string_lossy()))
        })
    })
}

/// A temporary results directory beside `--out`; removed when dropped
/// unless [`TempDir::commit`] moved it into place.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `.NAME.tmp-PID` (or `.NAME.tmp-PID-K` if that exists)
    /// beside `out`, and the parent directories of `out`.
    pub fn beside(out: &Path) -> Result<TempDir, String> {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let name = out.file_name().map_or("results".into(), |s| s.to_string_lossy().into_owned());
        let pid = std::process::id();
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        for k in 0..100 {
            let suffix = if k == 0 { String::new() } else { format!("-{k}") };
            let path = out.with_file_name(format!(".{name}.tmp-{pid}{suffix}"));
            match fs::create_dir(&path) {
                Ok(()) => {
                    pending.push(path.clone());
                    return Ok(TempDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(format!("cannot create a temporary directory beside {}", out.display()))
    }

    /// The directory to write into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the results into `out`, replacing what [`check`] allows.
    pub fn commit(self, out: &Path, force: bool) -> Result<(), String> {
        check(out, force)?;
        if fs::symlink_metadata(out).is_err() {
            return fs::rename(&self.path, out).map_err(|e| format!("cannot move results into {}: {e}", out.display()));
        }
        let old = unique_beside(out, "old")?;
        fs::rename(out, &old).map_err(|e| format!("cannot replace {}: {e}", out.display()))?;
        if let Err(e) = fs::rename(&self.path, out) {
            let _ = fs::rename(&old, out);
            return Err(format!("cannot move results into {}: {e}", out.display()));
        }
        // `old` is the previous results directory, which `check` accepted.
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.path.exists() {
            let _ = fs::remove_dir_all(&self.path);
        }
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|p| p != &self.path);
    }
}

/// Writes `emu plot`'s report into the results directory `dir` (one that
/// emu wrote, [`check`]): the new `plots/` and `index.html` are made in a
/// temporary directory beside it, then replace the old ones (which are
/// emu's: a results directory emu accepts holds nothing else under those
/// names).
pub fn install_report(dir: &Path, make: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    let shown = dir.display();
    if !dir.join("run.toml").is_file() {
        return Err(format!("{shown}: no run.toml: not a results directory of `emu run`"));
    }
    if let Some(what) = foreign_entry(dir) {
        return Err(format!(
            "{shown} is a directory emu did not write ({what}): emu adds its report only to its own results"
        ));
    }
    // Made beside the results, not in them (a leftover would make them
    // foreign); removed on every failure path.
    let tmp = TempDir::beside(dir)?;
    make(tmp.path())?;
    let plots = dir.join("plots");
    let old = unique_beside(&plots, "old")?;
    let had = fs::symlink_metadata(&plots).is_ok();
    if had {
        fs::rename(&plots, &old).map_err(|e| format!("cannot replace {}: {e}", plots.display()))?;
    }
    if let Err(e) = fs::rename(tmp.path().join("plots"), &plots) {
        if had {
            let _ = fs::rename(&old, &plots);
        }
        return Err(format!("cannot move the charts into {}: {e}", plots.display()));
    }
    if had {
        // The previous `plots/`, which `foreign_entry` accepted as emu's.
        let _ = fs::remove_dir_all(&old);
    }
    let index = dir.join("index.html");
    fs::rename(tmp.path().join("index.html"), &index).map_err(|e| format!("cannot write {}: {e}", index.display()))
}

/// A name beside `out` that does not exist yet: `.NAME.KIND-PID[-K]`.
fn unique_beside(out: &Path, kind: &str) -> Result<PathBuf, String> {
    let name = out.file_name().map_or("results".into(), |s| s.to_string_lossy().into_owned());
    let pid = std::process::id();
    (0..100)
        .map(|k| {
            let suffix = if k == 0 { String::new() } else { format!("-{k}") };
            out.with_file_name(format!(".{name}.{kind}-{pid}{suffix}"))
        })
        .find(|p| fs::symlink_metadata(p).is_err())
        .ok_or_else(|| format!("cannot find a free name beside {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that make temporary directories run one at a time: the
    /// interrupt handler's test removes every pending one.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn emu_results(dir: &Path) {
        fs::create_dir_all(dir.join("manifests")).unwrap();
        fs::write(dir.join("run.toml"), format!("{RUN_TOML_HEADER} 0.1.0\nseed = 1\n")).unwrap();
        fs::write(dir.join("summary.csv"), "flow\n").unwrap();
        fs::write(dir.join("manifests/00-a.yaml"), "kind: Pod\n").unwrap();
    }

    #[test]
    fn only_emus_own_results_or_an_empty_directory_are_replaced() {
        let t = tempfile::tempdir().unwrap();
        let ours = t.path().join("ours");
        emu_results(&ours);
        assert_eq!(check(&ours, false), Ok(()));
        fs::write(ours.join("notes.txt"), "mine").unwrap();
        let e = check(&ours, false).unwrap_err();
        assert!(e.contains("`notes.txt`") && e.contains("--force"), "{e}");
        assert_eq!(check(&ours, true), Ok(()));
        let empty = t.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert_eq!(check(&empty, false), Ok(()));
        let fake = t.path().join("fake");
        fs::create_dir(&fake).unwrap();
        fs::write(fake.join("run.toml"), "seed = 1\n").unwrap();
        assert!(check(&fake, false).unwrap_err().contains("no run.toml written by emu"));
    }

    #[test]
    fn files_links_and_dot_paths_are_never_replaced_even_with_force() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("notes.txt");
        fs::write(&file, "mine").unwrap();
        assert!(check(&file, true).unwrap_err().contains("is not a directory"));
        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        assert!(check(&link, true).unwrap_err().contains("symbolic link"));
        for p in [".", "..", "x/..", "./", "/"] {
            assert!(check(Path::new(p), true).unwrap_err().contains("name the results directory"), "{p}");
        }
        assert!(check(Path::new("/dev/null"), true).unwrap_err().contains("is not a directory"));
    }

    #[test]
    fn the_interrupt_handler_removes_pending_temporary_directories() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let t = tempfile::tempdir().unwrap();
        let tmp = TempDir::beside(&t.path().join("sig")).unwrap();
        fs::write(tmp.path().join("summary.csv"), "half").unwrap();
        let p = tmp.path().to_path_buf();
        drop(remove_pending());
        assert!(!p.exists());
        drop(tmp); // nothing left to remove
    }

    #[test]
    fn a_dropped_temporary_directory_is_removed_and_a_commit_replaces_old_results() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("res");
        // Someone else's directory with the temporary name is left alone.
        let theirs = t.path().join(format!(".res.tmp-{}", std::process::id()));
        fs::create_dir(&theirs).unwrap();
        let tmp = TempDir::beside(&out).unwrap();
        assert_ne!(tmp.path(), theirs);
        let p = tmp.path().to_path_buf();
        drop(tmp);
        assert!(!p.exists() && theirs.exists());
        emu_results(&out);
        let tmp = TempDir::beside(&out).unwrap();
        fs::write(tmp.path().join("run.toml"), format!("{RUN_TOML_HEADER} new\n")).unwrap();
        tmp.commit(&out, false).unwrap();
        assert!(fs::read_to_string(out.join("run.toml")).unwrap().ends_with("new\n"));
        assert!(!out.join("summary.csv").exists());
        let left: Vec<String> =
            fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left.len(), 2, "only res and the foreign temporary name: {left:?}");
    }
}
