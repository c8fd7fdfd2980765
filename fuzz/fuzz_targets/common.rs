//! Shared by the fuzz targets: a directory holding the seed manifests, so
//! that scenarios naming them load.

use std::path::PathBuf;
use std::sync::OnceLock;

/// `case.toml` in a directory with `mypod.yaml`, `myservice.yaml` and
/// `myweb.yaml` from workloads/seed.
pub fn case_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("emu-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workloads/seed");
        for m in ["mypod.yaml", "myservice.yaml", "myweb.yaml"] {
            std::fs::copy(seed.join(m), dir.join(m)).unwrap();
        }
        dir.join("case.toml")
    })
}

/// Loads `data` as a scenario: `None` when it is not UTF-8 or is refused.
/// A refusal must name the file.
pub fn load(data: &[u8]) -> Option<emu::scenario::Loaded> {
    let text = std::str::from_utf8(data).ok()?;
    match emu::scenario::load_str(case_path(), text, None, None, 1) {
        Ok(l) => Some(l),
        Err(msg) => {
            assert!(msg.contains("case.toml") || msg.contains(".yaml"), "refusal names no file: {msg}");
            None
        }
    }
}
