//! `tamperscope ela`: the classifier's preprocessing as files, for training and inspection.

use std::path::PathBuf;

use anyhow::Context;
use tamperscope::engine::ela::{ElaParams, signed_ela, signed_ela_native};
use tamperscope::engine::imageio::{load_image, write_atomic};

#[derive(clap::Args)]
pub struct ElaArgs {
    /// Input images.
    #[arg(required_unless_present_any = ["list", "print_codec"])]
    pub images: Vec<PathBuf>,
    /// A text file with one input path per line (for large training sets).
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Output folder; each input becomes <stem>.npy (or .png).
    #[arg(long, required_unless_present = "print_codec")]
    pub out_dir: Option<PathBuf>,
    /// Print the identity of the ELA's JPEG codec and settings, and exit (training keys its
    /// tensor caches by it, so a codec change never reuses stale tensors).
    #[arg(long)]
    pub print_codec: bool,
    /// JPEG quality of the re-encoding.
    #[arg(long, default_value_t = 90)]
    pub quality: u8,
    /// Side of the square classifier input the ELA is area-resized to.
    #[arg(long, default_value_t = 384)]
    pub size: u32,
    /// Divide E by this (1 writes raw levels).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f32,
    /// npy: float32 [3, size, size] of E / scale. png: |E| at native size, x8, for viewing.
    #[arg(long, default_value = "npy")]
    pub format: String,
}

pub fn run(args: &ElaArgs) -> anyhow::Result<bool> {
    if args.print_codec {
        println!("{}", tamperscope::engine::ela::ELA_CODEC);
        return Ok(true);
    }
    let out_dir = args.out_dir.as_ref().context("--out-dir is required")?;
    let mut inputs = args.images.clone();
    if let Some(list) = &args.list {
        let text = std::fs::read_to_string(list)
            .with_context(|| format!("cannot read {}", list.display()))?;
        inputs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
        );
    }
    if !(1..=100).contains(&args.quality) {
        anyhow::bail!("--quality must be 1..=100");
    }
    if !(args.scale.is_finite() && args.scale > 0.0) {
        anyhow::bail!("--scale must be positive");
    }
    crate::cli::common::ensure_dir(out_dir)?;
    let params = ElaParams {
        quality: args.quality,
        scale: args.scale,
        size: args.size,
    };
    let mut ok = true;
    let mut seen = std::collections::HashSet::new();
    for (i, path) in inputs.iter().enumerate() {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !seen.insert(stem.clone()) {
            eprintln!(
                "error: {}: another input has the same name {stem}; skipped",
                path.display()
            );
            ok = false;
            continue;
        }
        let result = (|| -> anyhow::Result<()> {
            let img = load_image(path)?;
            match args.format.as_str() {
                "npy" => {
                    let (w, h) = (img.rgb.width() as usize, img.rgb.height() as usize);
                    let e = signed_ela(
                        &img.rgb,
                        params.quality,
                        params.size as usize,
                        (w.min(64), h.min(64)),
                    )?;
                    let t = e.to_tensor(&params)?;
                    let data: Vec<f32> = t.iter().copied().collect();
                    let s = params.size as usize;
                    let bytes = tamperscope::outputs::npy::encode_f32(&[3, s, s], &data);
                    write_atomic(&out_dir.join(format!("{stem}.npy")), &bytes)?;
                }
                "png" => {
                    let planes = signed_ela_native(&img.rgb, params.quality)?;
                    let (w, h) = (img.rgb.width(), img.rgb.height());
                    let rgb: Vec<u8> = (0..(w * h) as usize)
                        .flat_map(|p| (0..3).map(move |c| (p, c)))
                        .map(|(p, c)| (planes[c][p].abs() * 8.0).min(255.0) as u8)
                        .collect();
                    let bytes = tamperscope::engine::imageio::png_rgb(w, h, &rgb)?;
                    write_atomic(&out_dir.join(format!("{stem}.png")), &bytes)?;
                }
                other => anyhow::bail!("unknown --format {other} (npy or png)"),
            }
            Ok(())
        })();
        if let Err(err) = result {
            eprintln!("error: {}: {err:#}", path.display());
            ok = false;
        }
        if inputs.len() > 1 && (i + 1) % 100 == 0 {
            eprintln!("ela: {}/{}", i + 1, inputs.len());
        }
    }
    Ok(ok)
}
