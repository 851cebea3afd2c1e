//! Copy-move evidence: where part of the photo was copied and pasted elsewhere in the same photo.
//! Training-free, and independent of the file's JPEG history (PNG, TIFF and resized JPEGs too).
//!
//! The detector is the dense-field method of Cozzolino, Poggi and Verdoliva, "Efficient
//! dense-field copy-move forgery detection", IEEE TIFS 10(11), 2015 ("the paper" below):
//!
//! 1. **Features** (paper section III-A): at every pixel, the magnitudes `|Z_nm|` of the Zernike
//!    moments of the disk of radius `R` around it, orders `n <= 5` (12 values, eq. 2-3). The
//!    magnitude of a Zernike moment does not change when the disk is rotated, so a rotated copy
//!    keeps its features.
//! 2. **Nearest-neighbour field** (section III-B): for every pixel `p` an offset `delta(p)` to the
//!    pixel whose features are closest (squared Euclidean distance, eq. 4), with
//!    `|delta| >= min_offset` so that a pixel never matches itself or its immediate neighbourhood,
//!    searched by PatchMatch (random initialisation, propagation, random search; Barnes et al.,
//!    SIGGRAPH 2009), which the rotation-invariant features make valid for rotated copies too.
//! 3. **Dense linear fitting** (section III-C, eq. 6-8): in a copied region the offset field is
//!    smooth (constant for a plain shift, linear in `p` for a rotated or scaled copy), elsewhere
//!    it is noise. Per pixel, `delta` is fitted by least squares as an affine function of the
//!    position over a `(2r+1)^2` window; the mean squared residual (px^2) below a threshold marks
//!    the pixel.
//! 4. **Post-processing** (section III-D): a median filter of the binary map, removal of regions
//!    smaller than a minimum area, the partner of every remaining pixel (`p + delta(p)`) marked
//!    too (so source and copy both show), and a dilation that restores the margins the patch
//!    and the fitting window cost.
//!
//! Two departures, both stated in [`CopyMoveParams`]: pixels whose neighbourhood is flat
//! (standard deviation under [`CopyMoveParams::min_texture`]) are never marked, because flat
//! areas (sky, walls, saturated highlights) match anywhere with a smooth offset field; and the
//! search runs on a luma image whose longest side is at most [`CopyMoveParams::max_side`] for
//! speed (the map comes back at the caller's resolution).

use serde::{Deserialize, Serialize};

use image::RgbImage;

use crate::engine::raster::{Map, resize_area};

/// Settings of the copy-move detector (recorded in every report). Distances are in pixels of the
/// image the search runs on (longest side at most `max_side`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyMoveParams {
    /// Longest side of the image the search runs on; larger inputs are area-downsampled.
    pub max_side: u32,
    /// Radius `R` of the disk the Zernike moments are computed on (paper section III-A).
    pub feature_radius: usize,
    /// Matches closer than this are not copies (the paper's minimum offset, section III-B).
    pub min_offset: f32,
    /// PatchMatch iterations (each: propagation and random search).
    pub iterations: usize,
    /// Half-size of the square window of the component-wise median filter applied to the offset
    /// field before the fitting, which removes isolated wrong matches (0 = none).
    pub offset_median_radius: usize,
    /// Half-size `r` of the dense linear fitting window, `(2r+1)^2` pixels (section III-C).
    pub fit_radius: usize,
    /// A pixel is marked when the mean squared residual of the affine fit of the offset field in
    /// its window is at most this many px^2 (section III-C, threshold on eq. 8).
    pub fit_threshold: f32,
    /// A marked pixel is kept only where its partner `q = p + delta(p)` is marked too and matches
    /// back, `|delta(q) + delta(p)| <` this many px: a copy and its source find each other, while
    /// self-similar texture (a gradient, a fence) chains from one neighbour to the next. Not in
    /// the paper.
    pub mutual_tolerance: f32,
    /// Half-size of the square median filter on the binary map (section III-D).
    pub median_radius: usize,
    /// Regions smaller than this fraction of the image are dropped (section III-D).
    pub min_area_fraction: f32,
    /// Dilation radius of the final map, px (section III-D): the margin the patch radius and the
    /// fitting window cost at a region's edge (`feature_radius + fit_radius`).
    pub dilate_radius: usize,
    /// Pixels whose `(2R+1)^2` neighbourhood has a luma standard deviation below this (0-255
    /// scale) are never marked: flat areas match anywhere. Not in the paper.
    pub min_texture: f32,
    /// Seed of PatchMatch's random initialisation and search; the result depends only on it and
    /// the image (not on the number of threads).
    pub seed: u64,
}

impl Default for CopyMoveParams {
    fn default() -> Self {
        Self {
            max_side: 512,
            feature_radius: 7,
            min_offset: 16.0,
            iterations: 8,
            offset_median_radius: 3,
            fit_radius: 4,
            fit_threshold: 4.0,
            mutual_tolerance: 3.0,
            median_radius: 3,
            min_area_fraction: 0.002,
            dilate_radius: 11,
            min_texture: 3.0,
            seed: 0x5eed_c0de,
        }
    }
}

/// One connected region of the copy-move map. Coordinates and offsets are in pixels of the
/// image given to [`detect`] (or of the file, after [`CopyMove::scaled`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneRegion {
    /// Area of the region as a fraction of the image, in [0, 1].
    pub area_fraction: f32,
    /// Bounding box `[x0, y0, x1, y1]` (inclusive-exclusive).
    pub bbox: [f32; 4],
    /// Bounding box of where this region's pixels were matched (the other copy).
    pub partner_bbox: [f32; 4],
    /// Median offset `(dx, dy)` from this region to its partner.
    pub offset: [f32; 2],
    /// Rotation (degrees, counter-clockwise in image axes) and scale of the affine map from this
    /// region to its partner, least-squares over the region's matches.
    pub rotation_deg: f32,
    pub scale: f32,
}

/// The copy-move evidence of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyMove {
    /// 1 where a pixel is a source or a copy, else 0; at the resolution of the image given to
    /// [`detect`].
    pub map: Map,
    /// Connected regions of `map`, largest first; a copy-move gives (at least) two, each the
    /// other's partner.
    pub regions: Vec<CloneRegion>,
    /// Image-level clone score in [0, 1]: `1 - exp(-marked / 0.01)` with `marked` the fraction of
    /// the image in `map` (a 1 % marked area gives 0.63); 0 without regions.
    pub score: f32,
    /// Why no search was made (image too small, uniform); `None` when it ran.
    pub absent: Option<String>,
    /// Pixels of the file per pixel of `map`, for the words and the JSON (1 unless
    /// [`CopyMove::scaled`] set it).
    pub pixel_scale: f32,
}

impl CopyMove {
    fn empty(width: usize, height: usize, reason: Option<String>) -> Self {
        CopyMove {
            map: Map::filled(width, height, 0.0),
            regions: Vec::new(),
            score: 0.0,
            absent: reason,
            pixel_scale: 1.0,
        }
    }

    /// Regions' boxes and offsets expressed in pixels of an image `s` times larger (the file,
    /// when the map is at the working resolution); the map itself is unchanged.
    pub fn scaled(mut self, s: f32) -> Self {
        if !(s.is_finite() && s > 0.0) {
            return self;
        }
        for r in &mut self.regions {
            for v in r.bbox.iter_mut().chain(r.partner_bbox.iter_mut()) {
                *v *= s;
            }
            for v in &mut r.offset {
                *v *= s;
            }
        }
        self.pixel_scale *= s;
        self
    }

    /// Fraction of the image marked.
    pub fn marked_fraction(&self) -> f32 {
        if self.map.data.is_empty() {
            return 0.0;
        }
        self.map.data.iter().filter(|&&v| v >= 0.5).count() as f32 / self.map.data.len() as f32
    }

    /// Plain-words findings for the analyst: one sentence per source/copy pair.
    pub fn summary(&self) -> Vec<String> {
        if let Some(why) = &self.absent {
            return vec![format!("No copy-move search: {why}.")];
        }
        if self.regions.is_empty() {
            return vec![
                "No copy-move: no textured region is repeated elsewhere in the image.".to_string(),
            ];
        }
        let mut out = Vec::new();
        let mut used = vec![false; self.regions.len()];
        for i in 0..self.regions.len() {
            if used[i] {
                continue;
            }
            used[i] = true;
            let r = &self.regions[i];
            // The partner region: the unused one whose box overlaps this region's partner box most.
            let partner = (0..self.regions.len())
                .filter(|&j| !used[j])
                .map(|j| (j, overlap(&r.partner_bbox, &self.regions[j].bbox)))
                .filter(|&(_, o)| o > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(j, _)| j);
            let pct = 100.0 * r.area_fraction;
            let mut s = match partner {
                Some(j) => {
                    used[j] = true;
                    format!(
                        "A {pct:.1} % region is repeated elsewhere in the image ({:.1} %), shifted by ({:.0}, {:.0}) px",
                        100.0 * self.regions[j].area_fraction,
                        r.offset[0],
                        r.offset[1]
                    )
                }
                None => format!(
                    "A {pct:.1} % region matches another part of the image shifted by ({:.0}, {:.0}) px",
                    r.offset[0], r.offset[1]
                ),
            };
            if r.rotation_deg.abs() >= 3.0 {
                s.push_str(&format!(", rotated by about {:.0} degrees", r.rotation_deg));
            }
            if (r.scale - 1.0).abs() >= 0.05 {
                s.push_str(&format!(", scaled by about {:.2}", r.scale));
            }
            s.push_str(": a copy-move (clone) edit, or a repeated pattern in the scene.");
            out.push(s);
        }
        out
    }
}

/// Area of the intersection of two boxes `[x0, y0, x1, y1]`.
fn overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// Copy-move detection on an RGB image (any size; a 1x1 or uniform image gives an empty result
/// with a reason). The map has the image's size; regions and offsets are in its pixels.
pub fn detect(image: &RgbImage, params: &CopyMoveParams) -> CopyMove {
    let (w0, h0) = (image.width() as usize, image.height() as usize);
    let luma: Vec<f32> = image
        .pixels()
        .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
        .collect();
    let (w, h) = crate::engine::raster::working_size(w0 as u32, h0 as u32, params.max_side.max(16));
    let luma = if (w, h) == (w0, h0) {
        luma
    } else {
        resize_area(&luma, w0, h0, w, h)
    };
    let mut result = detect_luma(&luma, w, h, params);
    if (w, h) != (w0, h0) {
        // Back to the caller's resolution: nearest sample of the map, boxes scaled.
        let (sx, sy) = (w as f32 / w0 as f32, h as f32 / h0 as f32);
        let data = (0..h0)
            .flat_map(|y| (0..w0).map(move |x| (x, y)))
            .map(|(x, y)| {
                let xs = ((x as f32 + 0.5) * sx) as usize;
                let ys = ((y as f32 + 0.5) * sy) as usize;
                result.map.data[ys.min(h - 1) * w + xs.min(w - 1)]
            })
            .collect();
        result.map = Map::new(w0, h0, data);
        result = result.scaled(w0 as f32 / w as f32);
        result.pixel_scale = 1.0;
    }
    result
}

/// [`detect`] on a luma plane (0-255) of `w x h` pixels, row-major.
///
/// # Panics
/// When `luma.len() != w * h`.
pub fn detect_luma(luma: &[f32], w: usize, h: usize, params: &CopyMoveParams) -> CopyMove {
    assert_eq!(luma.len(), w * h, "luma plane does not match its size");
    let r = params.feature_radius.max(1);
    let (gw, gh) = (w.saturating_sub(2 * r), h.saturating_sub(2 * r));
    let min_side = (2.0 * params.min_offset).ceil() as usize + 2 * params.fit_radius + 2;
    if gw < min_side || gh < min_side {
        return CopyMove::empty(
            w,
            h,
            Some(format!(
                "the image ({w} x {h} px at the search resolution) is too small for {}-px patches {} px apart",
                2 * r + 1,
                params.min_offset
            )),
        );
    }
    let texture = local_std(luma, w, h, r);
    let textured = texture.iter().filter(|&&s| s >= params.min_texture).count();
    if textured == 0 {
        return CopyMove::empty(
            w,
            h,
            Some(format!(
                "the image is flat (no neighbourhood with a luma standard deviation of {} or more)",
                params.min_texture
            )),
        );
    }
    let features = zernike_features(luma, w, h, r);
    let nnf = patch_match(&features, gw, gh, params);
    let nnf = median_offsets(&nnf, gw, gh, params.offset_median_radius);
    let err = dense_linear_fit(&nnf, gw, gh, params.fit_radius);
    let min2 = params.min_offset * params.min_offset;
    let candidate: Vec<bool> = (0..gw * gh)
        .map(|i| {
            let (x, y) = (i % gw, i / gw);
            let (dx, dy) = nnf[i];
            err[i] <= params.fit_threshold
                && (dx * dx + dy * dy) as f32 >= min2
                && texture[(y + r) * w + x + r] >= params.min_texture
        })
        .collect();
    let filtered = median_binary(&candidate, gw, gh, params.median_radius);
    let min_area = ((params.min_area_fraction * (w * h) as f32).ceil() as usize).max(1);
    let kept = remove_small(&filtered, gw, gh, min_area);
    let tol2 = params.mutual_tolerance * params.mutual_tolerance;
    let mutual: Vec<bool> = (0..gw * gh)
        .map(|i| {
            if !kept[i] {
                return false;
            }
            let (dx, dy) = nnf[i];
            let (qx, qy) = ((i % gw) as i32 + dx, (i / gw) as i32 + dy);
            if qx < 0 || qy < 0 || qx >= gw as i32 || qy >= gh as i32 {
                return false;
            }
            let j = qy as usize * gw + qx as usize;
            let (ex, ey) = (nnf[j].0 + dx, nnf[j].1 + dy);
            kept[j] && ((ex * ex + ey * ey) as f32) < tol2
        })
        .collect();
    let kept = remove_small(
        &median_binary(&mutual, gw, gh, params.median_radius),
        gw,
        gh,
        min_area,
    );

    // Full-resolution mask with offsets: the kept pixels and their partners (section III-D).
    let mut offset_at: Vec<Option<(i32, i32)>> = vec![None; w * h];
    for (i, _) in kept.iter().enumerate().filter(|&(_, &k)| k) {
        let (x, y) = ((i % gw + r) as i32, (i / gw + r) as i32);
        let (dx, dy) = nnf[i];
        offset_at[y as usize * w + x as usize] = Some((dx, dy));
        let (px, py) = (x + dx, y + dy);
        if px >= 0 && py >= 0 && (px as usize) < w && (py as usize) < h {
            let j = py as usize * w + px as usize;
            if offset_at[j].is_none() {
                offset_at[j] = Some((-dx, -dy));
            }
        }
    }
    let core: Vec<bool> = offset_at.iter().map(|o| o.is_some()).collect();
    let mask = dilate(&core, w, h, params.dilate_radius);
    let regions = describe_regions(&mask, &offset_at, w, h, min_area);
    // Regions under the minimum area after pairing (a partner cut by the border) are left out.
    let mut keep = vec![false; w * h];
    for (i, l) in label(&mask, w, h).0.iter().enumerate() {
        if let Some(l) = l {
            keep[i] = regions.iter().any(|r| r.0 == *l);
        }
    }
    let map = Map::new(
        w,
        h,
        keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect(),
    );
    let mut regions: Vec<CloneRegion> = regions.into_iter().map(|(_, r)| r).collect();
    regions.sort_by(|a, b| b.area_fraction.total_cmp(&a.area_fraction));
    let marked = keep.iter().filter(|&&k| k).count() as f32 / (w * h) as f32;
    CopyMove {
        map,
        score: if regions.is_empty() {
            0.0
        } else {
            1.0 - (-marked / 0.01).exp()
        },
        regions,
        absent: None,
        pixel_scale: 1.0,
    }
}

/// Number of Zernike magnitudes per pixel: `(n, m)` with `n <= 5`, `0 <= m <= n`, `n - m` even.
pub const ZERNIKE_FEATURES: usize = 12;

/// The `(n, m)` pairs of the features, in order.
fn zernike_orders() -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for n in 0..=5usize {
        for m in (0..=n).rev().filter(|m| (n - m) % 2 == 0).rev() {
            out.push((n, m));
        }
    }
    out
}

/// Zernike radial polynomial `R_n^m(rho)` (paper eq. 3).
fn radial(n: usize, m: usize, rho: f64) -> f64 {
    let fact = |k: usize| -> f64 { (1..=k).map(|i| i as f64).product() };
    (0..=(n - m) / 2)
        .map(|s| {
            let sign = if s % 2 == 0 { 1.0 } else { -1.0 };
            sign * fact(n - s) / (fact(s) * fact((n + m) / 2 - s) * fact((n - m) / 2 - s))
                * rho.powi((n - 2 * s) as i32)
        })
        .sum()
}

/// Index of a feature's real kernel and, for `m > 0`, of its imaginary kernel.
type FeatureKernels = (usize, Option<usize>);

/// Real kernels of the Zernike moments on a disk of radius `r` (`(2r+1)^2` taps each), each pixel
/// supersampled 4x4 so that the disk edge is anti-aliased; `Z_nm = (n+1)/pi * sum I V*_nm dA`
/// (paper eq. 2) with the disk mapped to the unit disk. Returns, per feature, the indices of its
/// real (and, for `m > 0`, imaginary) kernel.
fn zernike_kernels(r: usize) -> (Vec<Vec<f32>>, Vec<FeatureKernels>) {
    let side = 2 * r + 1;
    let radius = r as f64 + 0.5;
    let sub = 4;
    let mut kernels = Vec::new();
    let mut features = Vec::new();
    for (n, m) in zernike_orders() {
        let mut re = vec![0f32; side * side];
        let mut im = vec![0f32; side * side];
        for ty in 0..side {
            for tx in 0..side {
                let (mut sr, mut si) = (0f64, 0f64);
                for sy in 0..sub {
                    for sx in 0..sub {
                        let u = tx as f64 - r as f64 + (sx as f64 + 0.5) / sub as f64 - 0.5;
                        let v = ty as f64 - r as f64 + (sy as f64 + 0.5) / sub as f64 - 0.5;
                        let rho = (u * u + v * v).sqrt() / radius;
                        if rho > 1.0 {
                            continue;
                        }
                        let theta = v.atan2(u);
                        let rad = radial(n, m, rho);
                        sr += rad * (m as f64 * theta).cos();
                        si -= rad * (m as f64 * theta).sin();
                    }
                }
                // dA of one subsample on the unit disk: 1 / (sub^2 radius^2).
                let norm = (n as f64 + 1.0)
                    / std::f64::consts::PI
                    / ((sub * sub) as f64 * radius * radius);
                re[ty * side + tx] = (sr * norm) as f32;
                im[ty * side + tx] = (si * norm) as f32;
            }
        }
        let ri = kernels.len();
        kernels.push(re);
        if m > 0 {
            kernels.push(im);
            features.push((ri, Some(ri + 1)));
        } else {
            features.push((ri, None));
        }
    }
    (kernels, features)
}

/// Per-pixel Zernike magnitudes on the interior grid (pixels at least `r` from every border):
/// `(w - 2r) x (h - 2r)` pixels, [`ZERNIKE_FEATURES`] values each, interleaved.
fn zernike_features(luma: &[f32], w: usize, h: usize, r: usize) -> Vec<[f32; ZERNIKE_FEATURES]> {
    let (kernels, features) = zernike_kernels(r);
    let side = 2 * r + 1;
    let (gw, gh) = (w - 2 * r, h - 2 * r);
    // Nonzero taps of each kernel: (row, column, weight).
    let taps: Vec<Vec<(usize, usize, f32)>> = kernels
        .iter()
        .map(|k| {
            (0..side * side)
                .filter(|&i| k[i] != 0.0)
                .map(|i| (i / side, i % side, k[i]))
                .collect()
        })
        .collect();
    let mut out = vec![[0f32; ZERNIKE_FEATURES]; gw * gh];
    let rows = crate::engine::raster::row_ranges(gh, crate::engine::raster::threads(), 1);
    std::thread::scope(|scope| {
        let mut rest: &mut [[f32; ZERNIKE_FEATURES]] = &mut out;
        for range in rows {
            let (chunk, tail) = rest.split_at_mut(range.len() * gw);
            rest = tail;
            let (taps, features) = (&taps, &features);
            scope.spawn(move || {
                let mut acc = vec![vec![0f32; gw]; taps.len()];
                for (k, y) in range.clone().enumerate() {
                    for (a, kt) in acc.iter_mut().zip(taps) {
                        a.fill(0.0);
                        for &(ty, tx, wgt) in kt {
                            let src = &luma[(y + ty) * w + tx..(y + ty) * w + tx + gw];
                            for (d, &s) in a.iter_mut().zip(src) {
                                *d += wgt * s;
                            }
                        }
                    }
                    for x in 0..gw {
                        let f = &mut chunk[k * gw + x];
                        for (fi, &(re, im)) in features.iter().enumerate() {
                            let a = acc[re][x];
                            let b = im.map(|i| acc[i][x]).unwrap_or(0.0);
                            f[fi] = (a * a + b * b).sqrt();
                        }
                    }
                }
            });
        }
    });
    out
}

/// Local luma standard deviation over the `(2r+1)^2` square around each pixel (0 near borders
/// where the square does not fit), `w x h`.
fn local_std(luma: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let (s1, s2) = integral2(luma, w, h);
    let mut out = vec![0f32; w * h];
    let side = 2 * r + 1;
    if w < side || h < side {
        return out;
    }
    let n = (side * side) as f64;
    for y in r..h - r {
        for x in r..w - r {
            let box_sum = |s: &[f64]| {
                let (x0, y0, x1, y1) = (x - r, y - r, x + r + 1, y + r + 1);
                s[y1 * (w + 1) + x1] - s[y0 * (w + 1) + x1] - s[y1 * (w + 1) + x0]
                    + s[y0 * (w + 1) + x0]
            };
            let m = box_sum(&s1) / n;
            let v = (box_sum(&s2) / n - m * m).max(0.0);
            out[y * w + x] = v.sqrt() as f32;
        }
    }
    out
}

/// Integral images of `v` and `v^2`, `(w+1) x (h+1)`.
fn integral2(v: &[f32], w: usize, h: usize) -> (Vec<f64>, Vec<f64>) {
    let mut s1 = vec![0f64; (w + 1) * (h + 1)];
    let mut s2 = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let (mut r1, mut r2) = (0f64, 0f64);
        for x in 0..w {
            let a = v[y * w + x] as f64;
            r1 += a;
            r2 += a * a;
            s1[(y + 1) * (w + 1) + x + 1] = s1[y * (w + 1) + x + 1] + r1;
            s2[(y + 1) * (w + 1) + x + 1] = s2[y * (w + 1) + x + 1] + r2;
        }
    }
    (s1, s2)
}

use crate::engine::rng::SplitMix64 as Rng;

fn dist2(a: &[f32; ZERNIKE_FEATURES], b: &[f32; ZERNIKE_FEATURES]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Random-search candidates of a pixel whose features are prefetched: the widest radii, whose
/// targets are far from the pixel and so rarely in cache.
const PREFETCHED_DRAWS: usize = 5;

/// Ask the CPU to bring `v`'s cache line in (a hint; no effect on results).
#[inline(always)]
#[allow(unsafe_code)] // a prefetch hint: no pointer is read or written
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing the program sees and cannot fault; `v` is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (v as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Number of row bands PatchMatch runs in parallel; fixed, so that the field does not depend on
/// the machine's thread count.
const BANDS: usize = 4;

/// PatchMatch nearest-neighbour field (paper section III-B) on the `gw x gh` feature grid: for
/// each pixel the offset `(dx, dy)` to its best match found with `|delta| >= min_offset`.
fn patch_match(
    features: &[[f32; ZERNIKE_FEATURES]],
    gw: usize,
    gh: usize,
    params: &CopyMoveParams,
) -> Vec<(i32, i32)> {
    let min2 = (params.min_offset * params.min_offset).ceil() as i32;
    let allowed = |dx: i32, dy: i32| dx * dx + dy * dy >= min2;
    let (gwi, ghi) = (gw as i32, gh as i32);
    // Random initialisation.
    let mut rng = Rng(params.seed);
    let mut nnf = vec![(0i32, 0i32); gw * gh];
    let mut dist = vec![f32::INFINITY; gw * gh];
    for (i, (o, d)) in nnf.iter_mut().zip(dist.iter_mut()).enumerate() {
        let (x, y) = ((i % gw) as i32, (i / gw) as i32);
        for _ in 0..64 {
            let tx = rng.below(gw) as i32;
            let ty = rng.below(gh) as i32;
            if allowed(tx - x, ty - y) {
                *o = (tx - x, ty - y);
                *d = dist2(&features[i], &features[ty as usize * gw + tx as usize]);
                break;
            }
        }
    }
    let max_radius = gw.max(gh) as i32;
    for iter in 0..params.iterations {
        let forward = iter % 2 == 0;
        // Band boundaries shift by half a band on odd iterations so that propagation crosses them.
        let shift = if iter % 2 == 1 { gh / (2 * BANDS) } else { 0 };
        let mut bounds: Vec<usize> = (0..=BANDS)
            .map(|b| (b * gh / BANDS + shift).min(gh))
            .collect();
        bounds[0] = 0;
        bounds[BANDS] = gh;
        std::thread::scope(|scope| {
            let mut nnf_rest: &mut [(i32, i32)] = &mut nnf;
            let mut dist_rest: &mut [f32] = &mut dist;
            for b in 0..BANDS {
                let (y0, y1) = (bounds[b], bounds[b + 1]);
                let (nb, nt) = nnf_rest.split_at_mut((y1 - y0) * gw);
                let (db, dt) = dist_rest.split_at_mut((y1 - y0) * gw);
                nnf_rest = nt;
                dist_rest = dt;
                let seed = params.seed ^ ((iter as u64 + 1) << 32) ^ (b as u64 + 1);
                scope.spawn(move || {
                    let mut rng = Rng(seed);
                    let rows = y1 - y0;
                    let try_offset = |i: usize,
                                      x: i32,
                                      y: i32,
                                      o: (i32, i32),
                                      nb: &mut [(i32, i32)],
                                      db: &mut [f32],
                                      gi: usize| {
                        let (tx, ty) = (x + o.0, y + o.1);
                        if tx < 0 || ty < 0 || tx >= gwi || ty >= ghi || !allowed(o.0, o.1) {
                            return;
                        }
                        let d = dist2(&features[gi], &features[ty as usize * gw + tx as usize]);
                        if d < db[i] {
                            db[i] = d;
                            nb[i] = o;
                        }
                    };
                    for k in 0..rows * gw {
                        let k = if forward { k } else { rows * gw - 1 - k };
                        let (lx, ly) = (k % gw, k / gw);
                        let (x, y) = (lx as i32, (ly + y0) as i32);
                        let gi = (ly + y0) * gw + lx;
                        let step: i32 = if forward { -1 } else { 1 };
                        // The random search's draws do not depend on what the tries find, so
                        // they are drawn first (same sequence) and the far candidates' features,
                        // read at random and so mostly out of cache, are prefetched around the
                        // two likely bests (this pixel's offset and its scan neighbour's) while
                        // propagation runs. Prefetching is a hint: the field is unchanged.
                        let mut draws = [(0i32, 0i32); 32];
                        let mut n_draws = 0;
                        let mut radius = max_radius;
                        while radius >= 1 && n_draws < draws.len() {
                            let span = (2 * radius + 1) as usize;
                            draws[n_draws] = (
                                rng.below(span) as i32 - radius,
                                rng.below(span) as i32 - radius,
                            );
                            n_draws += 1;
                            radius /= 2;
                        }
                        let neighbour = lx as i32 + step;
                        let guesses = [
                            Some(nb[k]),
                            (neighbour >= 0 && neighbour < gwi)
                                .then(|| nb[ly * gw + neighbour as usize]),
                        ];
                        for d in &draws[..n_draws.min(PREFETCHED_DRAWS)] {
                            for g in guesses.iter().flatten() {
                                let (tx, ty) = (x + g.0 + d.0, y + g.1 + d.1);
                                if tx >= 0 && ty >= 0 && tx < gwi && ty < ghi {
                                    prefetch(&features[ty as usize * gw + tx as usize]);
                                }
                            }
                        }
                        // Propagation: the neighbours' offsets (already updated in this scan).
                        // Zero order: the neighbour's offset; first order: extrapolated from
                        // two neighbours, which follows the linearly varying field of a rotated
                        // or scaled copy (the paper's modified propagation, section III-B).
                        let (nx, nx2) = (lx as i32 + step, lx as i32 + 2 * step);
                        if nx >= 0 && nx < gwi {
                            let o = nb[ly * gw + nx as usize];
                            try_offset(k, x, y, o, nb, db, gi);
                            if nx2 >= 0 && nx2 < gwi {
                                let o2 = nb[ly * gw + nx2 as usize];
                                try_offset(k, x, y, (2 * o.0 - o2.0, 2 * o.1 - o2.1), nb, db, gi);
                            }
                        }
                        let (ny, ny2) = (ly as i32 + step, ly as i32 + 2 * step);
                        if ny >= 0 && (ny as usize) < rows {
                            let o = nb[ny as usize * gw + lx];
                            try_offset(k, x, y, o, nb, db, gi);
                            if ny2 >= 0 && (ny2 as usize) < rows {
                                let o2 = nb[ny2 as usize * gw + lx];
                                try_offset(k, x, y, (2 * o.0 - o2.0, 2 * o.1 - o2.1), nb, db, gi);
                            }
                        }
                        // Random search around the current best, radius halving down to 1.
                        for d in &draws[..n_draws] {
                            let best = nb[k];
                            try_offset(k, x, y, (best.0 + d.0, best.1 + d.1), nb, db, gi);
                        }
                    }
                });
            }
        });
    }
    nnf
}

/// Component-wise median of the offset field over the `(2r+1)^2` square (clipped at the
/// borders); isolated wrong matches would otherwise dominate the least-squares fit.
fn median_offsets(nnf: &[(i32, i32)], gw: usize, gh: usize, r: usize) -> Vec<(i32, i32)> {
    if r == 0 {
        return nnf.to_vec();
    }
    let mut out = vec![(0, 0); gw * gh];
    let rows = crate::engine::raster::row_ranges(gh, crate::engine::raster::threads(), 1);
    std::thread::scope(|scope| {
        let mut rest: &mut [(i32, i32)] = &mut out;
        for range in rows {
            let (chunk, tail) = rest.split_at_mut(range.len() * gw);
            rest = tail;
            scope.spawn(move || {
                let (mut xs, mut ys) = (Vec::new(), Vec::new());
                for (k, y) in range.enumerate() {
                    for x in 0..gw {
                        xs.clear();
                        ys.clear();
                        for yy in y.saturating_sub(r)..(y + r + 1).min(gh) {
                            for xx in x.saturating_sub(r)..(x + r + 1).min(gw) {
                                let o = nnf[yy * gw + xx];
                                xs.push(o.0);
                                ys.push(o.1);
                            }
                        }
                        let mid = xs.len() / 2;
                        let mx = *xs.select_nth_unstable(mid).1;
                        let my = *ys.select_nth_unstable(mid).1;
                        chunk[k * gw + x] = (mx, my);
                    }
                }
            });
        }
    });
    out
}

/// Dense linear fitting (paper section III-C, eq. 6-8): per pixel, the mean squared residual
/// (px^2) of the least-squares affine fit `delta(q) ~ A q + b` over the `(2r+1)^2` window around
/// it; `f32::INFINITY` where the window does not fit in the grid. With coordinates centred on the
/// window the normal equations are diagonal, so the residual comes from box sums in O(1).
fn dense_linear_fit(nnf: &[(i32, i32)], gw: usize, gh: usize, r: usize) -> Vec<f32> {
    let mut err = vec![f32::INFINITY; gw * gh];
    let side = 2 * r + 1;
    if gw < side || gh < side {
        return err;
    }
    // Integral images of d, d^2, x d, y d for both components.
    let stride = gw + 1;
    let mut sums = vec![[0f64; 8]; stride * (gh + 1)];
    for y in 0..gh {
        let mut row = [0f64; 8];
        for x in 0..gw {
            let (dx, dy) = nnf[y * gw + x];
            let (dx, dy, xf, yf) = (dx as f64, dy as f64, x as f64, y as f64);
            let v = [
                dx,
                dy,
                dx * dx + dy * dy,
                xf * dx,
                yf * dx,
                xf * dy,
                yf * dy,
                0.0,
            ];
            for (a, b) in row.iter_mut().zip(v) {
                *a += b;
            }
            let above = sums[y * stride + x + 1];
            let cell = &mut sums[(y + 1) * stride + x + 1];
            for k in 0..8 {
                cell[k] = above[k] + row[k];
            }
        }
    }
    let n = (side * side) as f64;
    let su2: f64 = side as f64
        * (-(r as i64)..=r as i64)
            .map(|u| (u * u) as f64)
            .sum::<f64>();
    for cy in r..gh - r {
        for cx in r..gw - r {
            let (x0, y0, x1, y1) = (cx - r, cy - r, cx + r + 1, cy + r + 1);
            let a = sums[y1 * stride + x1];
            let b = sums[y0 * stride + x1];
            let c = sums[y1 * stride + x0];
            let d = sums[y0 * stride + x0];
            let s: Vec<f64> = (0..8).map(|k| a[k] - b[k] - c[k] + d[k]).collect();
            let (cxf, cyf) = (cx as f64, cy as f64);
            let udx = s[3] - cxf * s[0];
            let vdx = s[4] - cyf * s[0];
            let udy = s[5] - cxf * s[1];
            let vdy = s[6] - cyf * s[1];
            let res = s[2]
                - (s[0] * s[0] + s[1] * s[1]) / n
                - (udx * udx + vdx * vdx + udy * udy + vdy * vdy) / su2;
            err[cy * gw + cx] = (res.max(0.0) / n) as f32;
        }
    }
    err
}

/// Binary median (majority) filter over the `(2r+1)^2` square (section III-D); outside the image
/// counts as unmarked.
fn median_binary(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    if r == 0 {
        return mask.to_vec();
    }
    let v: Vec<f32> = mask.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let (s, _) = integral2(&v, w, h);
    let full = ((2 * r + 1) * (2 * r + 1)) as f64;
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let (x0, y0) = (x.saturating_sub(r), y.saturating_sub(r));
            let (x1, y1) = ((x + r + 1).min(w), (y + r + 1).min(h));
            let count = s[y1 * (w + 1) + x1] - s[y0 * (w + 1) + x1] - s[y1 * (w + 1) + x0]
                + s[y0 * (w + 1) + x0];
            count > full / 2.0
        })
        .collect()
}

/// 8-connected components: a label per marked pixel and the pixel count of each label.
fn label(mask: &[bool], w: usize, h: usize) -> (Vec<Option<usize>>, Vec<usize>) {
    let mut labels = vec![None; w * h];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || labels[start].is_some() {
            continue;
        }
        let l = sizes.len();
        let mut size = 0;
        labels[start] = Some(l);
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for (ox, oy) in [
                (-1, -1),
                (0, -1),
                (1, -1),
                (-1, 0),
                (1, 0),
                (-1, 1),
                (0, 1),
                (1, 1),
            ] {
                let (nx, ny) = (x + ox, y + oy);
                if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if mask[j] && labels[j].is_none() {
                    labels[j] = Some(l);
                    stack.push(j);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The mask without its connected regions smaller than `min_area` pixels (section III-D).
fn remove_small(mask: &[bool], w: usize, h: usize, min_area: usize) -> Vec<bool> {
    let (labels, sizes) = label(mask, w, h);
    labels
        .iter()
        .map(|l| l.is_some_and(|l| sizes[l] >= min_area))
        .collect()
}

/// Dilation by a disk of radius `r` (section III-D).
fn dilate(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    if r == 0 {
        return mask.to_vec();
    }
    let ri = r as i64;
    let disk: Vec<(i64, i64)> = (-ri..=ri)
        .flat_map(|y| (-ri..=ri).map(move |x| (x, y)))
        .filter(|(x, y)| x * x + y * y <= ri * ri)
        .collect();
    let mut out = mask.to_vec();
    for (i, _) in mask.iter().enumerate().filter(|&(_, &m)| m) {
        let (x, y) = ((i % w) as i64, (i / w) as i64);
        // Interior pixels (all 4 neighbours marked) add nothing a neighbour does not.
        let inner = x > 0
            && y > 0
            && x + 1 < w as i64
            && y + 1 < h as i64
            && mask[i - 1]
            && mask[i + 1]
            && mask[i - w]
            && mask[i + w];
        if inner {
            continue;
        }
        for &(ox, oy) in &disk {
            let (nx, ny) = (x + ox, y + oy);
            if nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 {
                out[ny as usize * w + nx as usize] = true;
            }
        }
    }
    out
}

/// The regions of the final mask of at least `min_area` pixels, with their label, box, partner
/// box, median offset and the affine map to the partner (least squares over the matched pixels).
fn describe_regions(
    mask: &[bool],
    offset_at: &[Option<(i32, i32)>],
    w: usize,
    h: usize,
    min_area: usize,
) -> Vec<(usize, CloneRegion)> {
    let (labels, sizes) = label(mask, w, h);
    let mut per_label: Vec<Vec<(usize, usize, i32, i32)>> = vec![Vec::new(); sizes.len()];
    let mut boxes = vec![[usize::MAX, usize::MAX, 0usize, 0usize]; sizes.len()];
    for (i, l) in labels.iter().enumerate() {
        let Some(l) = *l else { continue };
        let (x, y) = (i % w, i / w);
        let b = &mut boxes[l];
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x + 1);
        b[3] = b[3].max(y + 1);
        if let Some((dx, dy)) = offset_at[i] {
            per_label[l].push((x, y, dx, dy));
        }
    }
    let total = (w * h) as f32;
    let mut out = Vec::new();
    for (l, matches) in per_label.iter().enumerate() {
        if sizes[l] < min_area || matches.is_empty() {
            continue;
        }
        let median = |mut v: Vec<i32>| -> f32 {
            v.sort_unstable();
            v[v.len() / 2] as f32
        };
        let offset = [
            median(matches.iter().map(|m| m.2).collect()),
            median(matches.iter().map(|m| m.3).collect()),
        ];
        let mut pb = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for &(x, y, dx, dy) in matches {
            let (px, py) = ((x as i32 + dx) as f32, (y as i32 + dy) as f32);
            pb[0] = pb[0].min(px);
            pb[1] = pb[1].min(py);
            pb[2] = pb[2].max(px + 1.0);
            pb[3] = pb[3].max(py + 1.0);
        }
        let (rotation_deg, scale) = affine_rotation_scale(matches);
        let b = boxes[l];
        out.push((
            l,
            CloneRegion {
                area_fraction: sizes[l] as f32 / total,
                bbox: [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32],
                partner_bbox: [
                    pb[0].max(0.0),
                    pb[1].max(0.0),
                    pb[2].min(w as f32),
                    pb[3].min(h as f32),
                ],
                offset,
                rotation_deg,
                scale,
            },
        ));
    }
    out
}

/// Rotation (degrees) and scale of the least-squares linear part `M` of `p -> p + delta(p)`:
/// `angle = atan2(M10 - M01, M00 + M11)`, `scale = sqrt(|det M|)`; `(0, 1)` when degenerate.
fn affine_rotation_scale(matches: &[(usize, usize, i32, i32)]) -> (f32, f32) {
    let n = matches.len() as f64;
    if n < 3.0 {
        return (0.0, 1.0);
    }
    let (mx, my) = matches.iter().fold((0f64, 0f64), |(a, b), m| {
        (a + m.0 as f64 / n, b + m.1 as f64 / n)
    });
    let (mtx, mty) = matches.iter().fold((0f64, 0f64), |(a, b), m| {
        (
            a + (m.0 as f64 + m.2 as f64) / n,
            b + (m.1 as f64 + m.3 as f64) / n,
        )
    });
    // Covariances: C = sum p p^T, D = sum t p^T (centred).
    let (mut cxx, mut cxy, mut cyy) = (0f64, 0f64, 0f64);
    let mut d = [[0f64; 2]; 2];
    for m in matches {
        let (px, py) = (m.0 as f64 - mx, m.1 as f64 - my);
        let (tx, ty) = (m.0 as f64 + m.2 as f64 - mtx, m.1 as f64 + m.3 as f64 - mty);
        cxx += px * px;
        cxy += px * py;
        cyy += py * py;
        d[0][0] += tx * px;
        d[0][1] += tx * py;
        d[1][0] += ty * px;
        d[1][1] += ty * py;
    }
    let det = cxx * cyy - cxy * cxy;
    if det.abs() < 1e-9 * (cxx * cyy).max(1.0) {
        return (0.0, 1.0);
    }
    // M = D C^-1.
    let inv = [[cyy / det, -cxy / det], [-cxy / det, cxx / det]];
    let mm = |i: usize, j: usize| d[i][0] * inv[0][j] + d[i][1] * inv[1][j];
    let (m00, m01, m10, m11) = (mm(0, 0), mm(0, 1), mm(1, 0), mm(1, 1));
    let angle = (m10 - m01).atan2(m00 + m11).to_degrees();
    let scale = (m00 * m11 - m01 * m10).abs().sqrt();
    if angle.is_finite() && scale.is_finite() {
        (angle as f32, scale as f32)
    } else {
        (0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic textured test image, not periodic: white noise box-blurred over 5x5 plus a
    /// little white noise, 0-255.
    fn texture(w: usize, h: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        let white: Vec<f32> = (0..w * h).map(|_| (rng.next_u64() % 256) as f32).collect();
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                let mut s = 0.0;
                for oy in -2..=2i64 {
                    for ox in -2..=2i64 {
                        let (xx, yy) = (
                            (x + ox).clamp(0, w as i64 - 1),
                            (y + oy).clamp(0, h as i64 - 1),
                        );
                        s += white[yy as usize * w + xx as usize];
                    }
                }
                let n = (rng.next_u64() % 32) as f32;
                (s / 25.0 - 128.0) * 3.0 + 112.0 + n
            })
            .collect()
    }

    #[test]
    fn zernike_magnitudes_are_rotation_invariant() {
        // A patch and the same patch rotated by 90 degrees (exact on the pixel grid).
        let r = 7;
        let side = 2 * r + 1;
        let p = texture(side, side, 3);
        let mut q = vec![0f32; side * side];
        for y in 0..side {
            for x in 0..side {
                q[x * side + (side - 1 - y)] = p[y * side + x];
            }
        }
        let fp = zernike_features(&p, side, side, r);
        let fq = zernike_features(&q, side, side, r);
        for (a, b) in fp[0].iter().zip(&fq[0]) {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn dense_fit_is_zero_on_affine_fields_and_large_on_noise() {
        let (w, h) = (40, 30);
        let affine: Vec<(i32, i32)> = (0..w * h)
            .map(|i| ((i % w) as i32 / 2 + 30, 20 - (i / w) as i32))
            .collect();
        let e = dense_linear_fit(&affine, w, h, 4);
        // Integer rounding of x/2 leaves a residual of at most 1/4 px^2.
        assert!(e[15 * w + 20] <= 0.25, "{}", e[15 * w + 20]);
        let mut rng = Rng(1);
        let noise: Vec<(i32, i32)> = (0..w * h)
            .map(|_| (rng.below(200) as i32, rng.below(200) as i32))
            .collect();
        let e = dense_linear_fit(&noise, w, h, 4);
        assert!(e[15 * w + 20] > 100.0, "{}", e[15 * w + 20]);
        assert!(e[0].is_infinite());
    }

    #[test]
    fn finds_a_shifted_copy_and_its_source() {
        let (w, h) = (200, 160);
        let mut img = texture(w, h, 7);
        // Copy the 40x40 block at (20, 30) to (120, 90).
        for y in 0..40 {
            for x in 0..40 {
                img[(90 + y) * w + 120 + x] = img[(30 + y) * w + 20 + x];
            }
        }
        let params = CopyMoveParams::default();
        let cm = detect_luma(&img, w, h, &params);
        assert!(cm.absent.is_none());
        let at = |x: usize, y: usize| cm.map.data[y * w + x];
        assert_eq!(at(40, 50), 1.0, "source centre");
        assert_eq!(at(140, 110), 1.0, "copy centre");
        assert_eq!(at(170, 20), 0.0, "elsewhere");
        assert!(cm.regions.len() >= 2, "{:?}", cm.regions);
        let r = &cm.regions[0];
        assert!(
            (r.offset[0].abs() - 100.0).abs() <= 1.0 && (r.offset[1].abs() - 60.0).abs() <= 1.0,
            "{:?}",
            r.offset
        );
        assert!(cm.score > 0.5, "{}", cm.score);
        let words = cm.summary().join(" ");
        assert!(words.contains("repeated elsewhere"), "{words}");
    }

    #[test]
    fn uniform_and_tiny_images_give_reasons() {
        let params = CopyMoveParams::default();
        let flat = detect_luma(&vec![90.0; 300 * 200], 300, 200, &params);
        assert!(flat.absent.as_deref().is_some_and(|r| r.contains("flat")));
        assert!(flat.map.data.iter().all(|&v| v == 0.0));
        assert_eq!(flat.score, 0.0);
        let tiny = detect(&RgbImage::new(1, 1), &params);
        assert!(tiny.absent.is_some());
        assert_eq!((tiny.map.width, tiny.map.height), (1, 1));
        let empty = detect(&RgbImage::new(0, 0), &params);
        assert!(empty.absent.is_some());
        assert!(empty.summary()[0].starts_with("No copy-move search"));
    }

    #[test]
    fn result_does_not_depend_on_the_seed_much_and_is_repeatable() {
        let (w, h) = (160, 120);
        let img = texture(w, h, 11);
        let params = CopyMoveParams::default();
        let a = detect_luma(&img, w, h, &params);
        let b = detect_luma(&img, w, h, &params);
        assert_eq!(a, b, "same seed, same result");
        assert!(a.regions.is_empty(), "{:?}", a.regions);
    }
}
