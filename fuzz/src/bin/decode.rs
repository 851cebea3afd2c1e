//! AFL++ target: `cargo afl build --release --bin decode`, then
//! `cargo afl fuzz -i seeds -o out target/release/decode` (docs/fuzzing.md).
//!
//! `cargo afl build` sets `--cfg fuzzing` and links AFL++'s runtime. A plain `cargo build` (no
//! AFL) gives a replay tool instead: `decode FILE...` runs files through the same stages, and
//! `decode < FILE` reads one input from stdin; a panic prints its message and backtrace
//! (RUST_BACKTRACE=1) as in the product.

fn main() {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    if !args.is_empty() {
        for path in args {
            let data = std::fs::read(&path).expect("read input");
            let t = std::time::Instant::now();
            let trail = tamperscope_fuzz::run(&data);
            eprintln!(
                "{}: {trail} ({:.3} s)",
                path.display(),
                t.elapsed().as_secs_f64()
            );
        }
        return;
    }
    // A panic aborts (AFL's crash signal) unless the engine contains it (a panic inside the
    // codec crate, reported as a decode error): the hook `afl::fuzz!` would install aborts on
    // every panic, so this one is installed instead, with `fuzz_nohook!`.
    #[cfg(fuzzing)]
    {
        std::panic::set_hook(Box::new(|info| {
            if !tamperscope_fuzz::panic_is_contained(info) {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
        afl::fuzz_nohook!(|data: &[u8]| {
            tamperscope_fuzz::run(data);
        });
    }
    #[cfg(not(fuzzing))]
    {
        use std::io::Read as _;
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).expect("read stdin");
        eprintln!("stdin: {}", tamperscope_fuzz::run(&data));
    }
}
