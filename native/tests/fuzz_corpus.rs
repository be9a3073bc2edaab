//! The short smoke run of every fuzz target inside `cargo test`: each seed of
//! `native/fuzz/corpus/<target>/` goes through the target's body in
//! `rtcbot::fuzzing`, on stable. The real fuzzing is `cargo +nightly fuzz run
//! <target>` (see `native/fuzz/README.md`).

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the fuzz target {target:?} has no corpus directory {} ({e}): add seed files",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus directory {} of fuzz target {target:?} is empty: add seed files",
        dir.display()
    );
    files
}

#[test]
fn every_fuzz_target_runs_its_corpus_without_a_panic() {
    for (target, body) in rtcbot::fuzzing::TARGETS {
        let files = corpus(target);
        for file in &files {
            let data = std::fs::read(file).expect("a readable corpus file");
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(
                run.is_ok(),
                "fuzz target {target:?} panicked on {} (reproduce: cd native && \
                 cargo +nightly fuzz run {target} {})",
                file.display(),
                file.display()
            );
        }
        eprintln!("{target}: {} corpus files", files.len());
    }
}

#[test]
fn every_fuzz_target_has_a_file_and_a_corpus() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (target, _) in rtcbot::fuzzing::TARGETS {
        let file = fuzz.join("fuzz_targets").join(format!("{target}.rs"));
        assert!(file.is_file(), "no fuzz target file {}", file.display());
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target:?}"
        );
        corpus(target);
    }
}
