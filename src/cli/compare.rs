//! `tamperscope compare-evals A.json B.json`: B against A, image by image.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tamperscope::outputs::eval::EvalReport;
use tamperscope::outputs::eval_compare::{Comparison, compare};

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The reference evaluation (`tamperscope eval --out`), e.g. the shipped model's.
    pub a: PathBuf,
    /// The candidate evaluation of the same dataset.
    pub b: PathBuf,
    /// Also write the comparison as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<EvalReport> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a `tamperscope eval` result", path.display()))
}

pub fn run(args: &CompareArgs) -> anyhow::Result<bool> {
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let c = compare(&a, &b)
        .with_context(|| format!("{} against {}", args.b.display(), args.a.display()))?;
    print_table(&c, &args.a, &args.b);
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::cli::common::ensure_dir(parent)?;
        }
        tamperscope::engine::imageio::write_atomic(out, &serde_json::to_vec_pretty(&c)?)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(true)
}

fn print_table(c: &Comparison, a: &Path, b: &Path) {
    println!(
        "A: {}\nB: {}\ndataset {}",
        a.display(),
        b.display(),
        c.dataset
    );
    if let Some(i) = &c.image_level {
        println!(
            "image level ({} images): AUC A {:.3}  B {:.3}  B-A {:+.3}  95% paired bootstrap [{:+.3}, {:+.3}] ({} resamples)",
            i.images, i.auc_a, i.auc_b, i.diff, i.ci95.0, i.ci95.1, i.resamples
        );
    }
    println!("pixel AUC, per image, paired:");
    println!(
        "  {:<44} {:>4} {:>6} {:>6} {:>7} {:>6} {:>6} {:>9} {:>16}",
        "map", "n", "A", "B", "B-A", "±SE", "z", "B>A / B<A", "F1@0.5 B-A ±SE"
    );
    for p in &c.pixel_level {
        let z = p
            .diff_se
            .filter(|se| *se > 0.0)
            .map(|se| format!("{:+.2}", p.diff / se))
            .unwrap_or_else(|| "-".into());
        let se = p
            .diff_se
            .map(|se| format!("{se:.3}"))
            .unwrap_or_else(|| "-".into());
        // F1 pairs exist only when both evaluations kept per-image F1 (eval since 2026-12-01)
        let f1 = match (p.f1_diff, p.f1_diff_se) {
            (Some(d), Some(se)) => format!("{d:+.3} {se:.3}"),
            _ => "-".into(),
        };
        println!(
            "  {:<44} {:>4} {:>6.3} {:>6.3} {:>+7.3} {:>6} {:>6} {:>9} {:>16}",
            p.map,
            p.images,
            p.auc_a,
            p.auc_b,
            p.diff,
            se,
            z,
            format!("{} / {}", p.b_higher, p.b_lower),
            f1
        );
    }
}
