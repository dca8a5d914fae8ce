//! The test command must pass on a fresh clone with nothing beside it: no file of the repository may read a path
//! outside it (such as a sibling checkout of the developers' shared folder), and the reference data the tests replay must be in the tree.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Directories whose files run or are read by the tests, the benchmarks and the scripts.
const SCANNED: &[&str] = &[
    "src",
    "tests",
    "benches",
    "scripts",
    ".ci",
    "examples",
    "webhook-config",
    "certs",
];

/// Spellings of a path that leaves the repository. Built from parts so this file does not match itself.
fn escapes() -> Vec<String> {
    let up = "..";
    vec![
        format!("{up}/shared"),
        format!("{up}\\shared"),
        format!("\"/{up}/"),
        format!("/{up}/{up}/"),
    ]
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            // Reference data is read, not executed; it may mention anything.
            if p.ends_with("tests/data") {
                continue;
            }
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_file_reads_a_path_outside_the_repository() {
    let root = Path::new(ROOT);
    let mut all = vec![root.join("Cargo.toml")];
    for d in SCANNED {
        files(&root.join(d), &mut all);
    }
    assert!(all.len() > 20, "scanned too few files: {}", all.len());
    let patterns = escapes();
    let mut found = Vec::new();
    for f in &all {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue; // binary file
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(p) = patterns.iter().find(|p| line.contains(p.as_str())) {
                found.push(format!("{}:{}: {p:?} in {line:?}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "paths outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn real_controller_reference_data_is_in_the_repository() {
    let data = Path::new(ROOT).join("tests/data/avi");
    for (dir, at_least) in [("recordings", 10), ("captures", 20)] {
        let n = std::fs::read_dir(data.join(dir))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0);
        assert!(
            n >= at_least,
            "tests/data/avi/{dir} holds {n} JSON files, expected at least {at_least}"
        );
    }
    assert!(
        data.join("README.md").is_file(),
        "tests/data/avi/README.md (provenance) is missing"
    );
}
