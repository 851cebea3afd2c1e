"""Numpy reference of the A-DJPG evidence map (METHOD.md section 9), to check the Rust maps.

The algorithm and its defaults are those of the project's prototype `../shared/tools/dq_prototype.py`
(Bianchi & Piva, IEEE TIFS 2012, section III): per zig-zag frequency (first K, DC included) the
histogram of the stored coefficients is fitted by EM as alpha*p0 + (1-alpha)*p1(Q1), p0 the calibrated
(grid shifted by (1, 1)) histogram requantised with Q2, p1 the same quantised with Q1, blurred by the
decoder's rounding noise and requantised with Q2; Q1 by maximum likelihood over 1..IJG-q50; a frequency
is used when Q2 mod Q1 != 0 and its gain over the best Q1-divides-Q2 model exceeds log(#blocks); per
block LLR summed, box-smoothed s x s, P(tampered) = 1 / (1 + exp(LLR)).

The coefficients come from libjpeg (PyPI jpeglib), independently of the Rust layer
(libjpeg-turbo-rs), so agreement checks the coefficient reading too.

    python -m tamperscope_training.dq_reference FILE.jpg [--nfreq 36] [--smooth 5] [--out map.npy]
prints the fits as JSON and writes the per-block posterior (blocks_y x blocks_x, float64).
"""
import argparse
import json
import sys

import jpeglib
import numpy as np
from scipy import ndimage
from scipy.fft import dctn, idctn
from scipy.special import ndtr

ZIGZAG = sorted(((u, v) for u in range(8) for v in range(8)),
                key=lambda p: (p[0] + p[1], p[0] if (p[0] + p[1]) % 2 else p[1]))
Q50 = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]])


def blocks_to_img(b):
    bh, bw = b.shape[:2]
    return b.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)


def img_to_blocks(x):
    h, w = x.shape[0] // 8 * 8, x.shape[1] // 8 * 8
    return x[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def read_jpeg(path):
    """Quantised luminance coefficients (bh, bw, 8, 8), their table, float decode of Y, (upsampled) Cb, Cr."""
    j = jpeglib.read_dct(path)
    tn = list(j.quant_tbl_no)
    qy = j.qt[tn[0]].astype(np.float64)
    cy = j.Y.astype(np.int64)
    yf = blocks_to_img(idctn(cy * qy, axes=(2, 3), norm='ortho')) + 128.0
    chroma = None
    if j.has_chrominance:
        chroma = []
        for c, t in ((j.Cb, tn[1]), (j.Cr, tn[2])):
            c = blocks_to_img(idctn(c.astype(np.float64) * j.qt[t], axes=(2, 3), norm='ortho')) + 128.0
            fy = max(yf.shape[0] // c.shape[0], 1)
            fx = max(yf.shape[1] // c.shape[1], 1)
            c = np.repeat(np.repeat(c, fy, 0), fx, 1)[:yf.shape[0], :yf.shape[1]]
            if c.shape != yf.shape:
                c = np.pad(c, ((0, yf.shape[0] - c.shape[0]), (0, yf.shape[1] - c.shape[1])), mode='edge')
            chroma.append(c)
    return cy, qy, yf, chroma


def rounding_noise(yf, chroma):
    if chroma is not None:
        cb, cr = chroma[0] - 128, chroma[1] - 128
        rgb = np.stack([yf + 1.402 * cr, yf - 0.344136 * cb - 0.714136 * cr, yf + 1.772 * cb])
        e = rgb - np.clip(np.round(rgb), 0, 255)
        ey = 0.299 * e[0] + 0.587 * e[1] + 0.114 * e[2]
    else:
        ey = yf - np.clip(np.round(yf), 0, 255)
    ed = dctn(img_to_blocks(ey), axes=(2, 3), norm='ortho')
    return float(np.sqrt(ed.var() + 1.0 / 12)), float(ed[:, :, 0, 0].mean())


def _cdf(cs, h, t):
    n = len(h)
    fl = np.floor(t)
    isint = np.isclose(t, fl)
    fi = np.clip(fl.astype(np.int64), -1, n - 1)
    below = cs[np.clip(fi, 0, n)]
    return np.where(isint, below + 0.5 * h[np.clip(fi, 0, n - 1)] * ((fi >= 0) & (fi < n)),
                    cs[np.clip(fi + 1, 0, n)])


def qbin(h, off, q, kmin, kmax):
    cs = np.concatenate([[0.0], np.cumsum(h)])
    k = np.arange(kmin, kmax + 1, dtype=np.float64)
    return _cdf(cs, h, (k + 0.5) * q + off) - _cdf(cs, h, (k - 0.5) * q + off)


def dq_model(h, off, q1, q2, kmin, kmax, sig, bias):
    jmin = int(np.floor(-off / q1)) - 1
    jmax = int(np.ceil((len(h) - off) / q1)) + 1
    m = qbin(h, off, q1, jmin, jmax)
    j = np.arange(jmin, jmax + 1)
    keep = m > 0
    j, m = j[keep], m[keep]
    r = int(np.ceil((5 * sig + q2) / q2)) + 1
    k = np.round((j * q1 + bias) / q2).astype(np.int64)[:, None] + np.arange(-r, r + 1)[None, :]
    v = (j * q1 + bias)[:, None]
    p = ndtr(((k + 0.5) * q2 - v) / sig) - ndtr(((k - 0.5) * q2 - v) / sig)
    out = np.zeros(kmax - kmin + 1)
    ok = (k >= kmin) & (k <= kmax)
    np.add.at(out, (k - kmin)[ok], (p * m[:, None])[ok])
    return out


def em_alpha(c, p0, p1, alpha=0.5, iters=50, tol=1e-4):
    n = c.sum()
    for _ in range(iters):
        b = alpha * p0 / (alpha * p0 + (1 - alpha) * p1)
        a_new = float((c * b).sum() / n)
        done = abs(a_new - alpha) < tol
        alpha = a_new
        if done:
            break
    return alpha, float((c * np.log(alpha * p0 + (1 - alpha) * p1)).sum())


def adjpg(path, nfreq=36, smooth=5, min_gain_per_block=0.15):
    """Per-block P(tampered) (blocks_y, blocks_x) and the per-frequency fits.

    min_gain_per_block: the image-level rule of the Rust layer (CompressionParams::
    adjpg_min_gain_per_block): when the used frequencies' gains sum to less than this many nats
    per block, no frequency counts (0 reproduces the prototype exactly)."""
    cy, qy, yf, chroma = read_jpeg(path)
    sig, bias_dc = rounding_noise(yf, chroma)
    cal = dctn(img_to_blocks(yf[1:, 1:] - 128.0), axes=(2, 3), norm='ortho')
    bh, bw = cy.shape[:2]
    guard = np.log(bh * bw)
    llr_sum = np.zeros((bh, bw))
    fits = []
    for (u, v) in ZIGZAG[:nfreq]:
        q2 = int(qy[u, v])
        x = cy[:, :, u, v].ravel()
        cv = cal[:, :, u, v].ravel()
        b = int(max(np.abs(cv).max(), np.abs(x).max() * q2)) + 4 * int(Q50[u, v]) + 16
        h = np.bincount(np.clip(np.round(cv).astype(np.int64) + b, 0, 2 * b), minlength=2 * b + 1).astype(float)
        ncal = h.sum()
        h /= ncal
        kmin, kmax = int(np.floor(-b / q2)) - 1, int(np.ceil(b / q2)) + 1
        nk = kmax - kmin + 1

        def lap(p):
            return (p / max(p.sum(), 1e-300) * ncal + 1.0) / (ncal + nk)

        p0 = lap(qbin(h, b, q2, kmin, kmax))
        c = np.bincount(np.clip(x - kmin, 0, nk - 1), minlength=nk).astype(float)
        bias = bias_dc if (u, v) == (0, 0) else 0.0
        best, base = None, -np.inf
        for q1 in range(1, int(Q50[u, v]) + 1):
            p1 = lap(dq_model(h, b, q1, q2, kmin, kmax, sig, bias))
            a, ll = em_alpha(c, p0, p1)
            if q2 % q1 == 0:
                base = max(base, ll)
            if best is None or ll > best[1]:
                best = (q1, ll, a, p1)
        q1, ll, a, p1 = best
        used = bool(q2 % q1 != 0 and ll - base > guard)
        if used:
            llr_sum += np.log(p1 / p0)[x - kmin].reshape(bh, bw)
        fits.append(dict(u=u, v=v, q2=q2, q1=q1, alpha=a, gain=ll - base, used=used))
    if sum(f['gain'] for f in fits if f['used']) < min_gain_per_block * bh * bw:
        for f in fits:
            f['used'] = False
        llr_sum[:] = 0.0
    s = ndimage.uniform_filter(llr_sum, smooth, mode='nearest') if smooth > 1 else llr_sum
    p = 1.0 / (1.0 + np.exp(np.clip(s, -50, 50)))
    return p, dict(fits=fits, rounding_sd=sig, guard=float(guard))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('jpeg')
    ap.add_argument('--nfreq', type=int, default=36)
    ap.add_argument('--smooth', type=int, default=5)
    ap.add_argument('--min-gain-per-block', type=float, default=0.15)
    ap.add_argument('--out', default='')
    a = ap.parse_args(argv)
    p, info = adjpg(a.jpeg, a.nfreq, a.smooth, a.min_gain_per_block)
    if a.out:
        np.save(a.out, p)
    json.dump(info, sys.stdout, indent=1)
    print()


if __name__ == '__main__':
    main()
