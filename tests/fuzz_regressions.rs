//! Every input the fuzzer (fuzz/, docs/fuzzing.md) found to crash or hang the input layer, run
//! through the same stages as the fuzz target: decode, ELA, JPEG coefficients + compression
//! analysis, EXIF. An `Err` is the right answer to a hostile file; a panic (in any thread,
//! including the ELA workers, whose panics `signed_ela` would otherwise turn into an error) or a
//! run over the time bound (a hang) is a failure. The files are in tests/fuzz_regressions/, one per
//! distinct bug, named after it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// A fuzz input (all under 64 KB) must be answered within this many times the slowest seed of
/// the fuzzer's corpus (fuzz/seeds/, 16-64 px files of every kind) in the same build, and never
/// in under 10 s (a hang is minutes; a loaded CI machine must not flake): the fuzzer's bound was 1 s in an optimised build, and the parent's test profile
/// leaves the engine's own code unoptimised, so the bound follows the build's speed.
const TIME_FACTOR: u32 = 20;

#[test]
fn fuzz_regressions_do_not_panic_or_hang() {
    // Built by the parent crate (`cargo test --test fuzz_regressions`) and by fuzz/
    // (`cargo test --release --test fuzz_regressions`, the same file, no GUI dependencies).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        root.join("tests/fuzz_regressions"),
        root.join("../tests/fuzz_regressions"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .expect("tests/fuzz_regressions exists");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/fuzz_regressions")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );

    // The time bound, from the seeds in this build.
    let seeds = dir.join("../../fuzz/seeds");
    let mut slowest = Duration::ZERO;
    for e in std::fs::read_dir(&seeds).expect("fuzz/seeds (cargo run --bin make_seeds in fuzz/)") {
        let bytes = std::fs::read(e.expect("dir entry").path()).expect("read seed");
        let t = Instant::now();
        harness::run(&bytes);
        slowest = slowest.max(t.elapsed());
    }
    let time_bound = (slowest * TIME_FACTOR).max(Duration::from_secs(10));
    eprintln!(
        "slowest seed {:.3} s: time bound {:.2} s",
        slowest.as_secs_f64(),
        time_bound.as_secs_f64()
    );

    let default_hook = std::panic::take_hook();
    // Panics inside the JPEG codec crate are contained by the engine (a decode error): they are
    // the codec's bugs and not counted; every other panic, in any thread, is.
    std::panic::set_hook(Box::new(move |info| {
        if !harness::panic_is_contained(info) {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        default_hook(info);
    }));

    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read input");
        let before = PANICS.load(Ordering::SeqCst);
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| harness::run(&bytes));
        let elapsed = t.elapsed();
        let panics = PANICS.load(Ordering::SeqCst) - before;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match outcome {
            Ok(trail) => eprintln!("{name}: {trail} ({:.2} s)", elapsed.as_secs_f64()),
            Err(_) => eprintln!("{name}: PANIC escaped ({:.2} s)", elapsed.as_secs_f64()),
        }
        if panics > 0 {
            failures.push(format!("{name}: {panics} panic(s)"));
        }
        if elapsed > time_bound {
            failures.push(format!(
                "{name}: took {:.2} s (bound {:.2} s)",
                elapsed.as_secs_f64(),
                time_bound.as_secs_f64()
            ));
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        failures.is_empty(),
        "{} of {} fuzz regression inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
