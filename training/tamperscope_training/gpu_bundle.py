"""The GPU recipe as one folder: train WCBnet on a bare GPU machine that has python3 and PyTorch but no
network, no Rust and no checkout, from at most ``--budget-mib`` of files (issue 19, item 4).

The bundle carries **images, not tensors**: the training JPEGs themselves (a seeded, size-capped subset of
the CPU recipe's splits, twins kept together), the app's own headless binary (xz-compressed) to compute
ELA there, the ImageNet MobileNetV2 weights and this package. Before training, ``prepare`` proves on that
machine that its ELA is the app's: the binary's codec identity and the SHA-256 of reference ELA tensors
written here by the release binary must match, else it stops. The run brings back the checkpoint (split
into parts under 15 MiB, the device tool's per-file limit being 16 MiB), ``summary.json`` (per-epoch
held-out image AUC, command, commit, data) and the log; ``unpack`` rebuilds the run folder here, where
``evalrun`` and ``select`` score it exactly like a CPU run.

Layout::

    run.sh                        the one command: ./run.sh OUT [extra train.py arguments]
    MANIFEST.json                 commit, train arguments, files with SHA-256, codec, reference ELA hashes
    bin/tamperscope.xz            `cargo build --release --no-default-features` (no desktop app)
    weights/mobilenetv2_imagenet_features.pt
    py/tamperscope_training/      this package
    data/<split>/                 labels.csv (+ recipe.json) and images/ of each training split's subset
    data/bundle_val/              held-out groups (hosts of twins never seen in training), for the log

Commands (from ``training/``)::

    python -m tamperscope_training.gpu_bundle make --out ../.gpu_bundle --for-device-tool
    ../.gpu_bundle/run.sh /tmp/out                       # on the GPU machine (or here, --device cpu)
    python -m tamperscope_training.gpu_bundle unpack /tmp/out --run runs/gpu-NAME
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import lzma
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .data import BINARY, REPO, SHARED, codec_ident, git_commit, labels_csv, run_ela
from .export import sha256

MIB = 1 << 20
PART = 15 * MIB  # the device tool returns files of at most 16 MiB
DEFAULT_DATA = "casia_rq,casia_pairs4_fresh_tex,synth_uw2k"
# The shipped CPU recipe (training/README.md, "CPU recipe"); run.sh's own arguments override these.
DEFAULT_TRAIN = ("--model wcb-mobilenetv2-separate-lse --paired --epochs 1 --frozen 3 --d 64 "
                 "--bn-recalibrate 400 --seed 2 --threads 8")
HEADLESS = REPO / "target" / "headless" / "release" / "tamperscope"
MNV2 = SHARED / "models" / "mobilenetv2_imagenet_features.pt"
N_REFERENCE = 4


def tree_bytes() -> int:
    """Bytes the device tool sends besides carried paths: tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout
    return sum((REPO / p).stat().st_size for p in out.decode().split("\0") if p and (REPO / p).is_file())


def read_rows(split: str) -> tuple[list[str], list[dict]]:
    with open(labels_csv(split)) as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def group_key(row: dict, i: int) -> str:
    """Rows that must stay together: a host photo's twins (``host``), a pair (``pair``), else the row."""
    return row.get("host") or row.get("pair") or f"row{i}"


def ela_hashes(binary: Path, images: list[Path]) -> dict[str, str]:
    """SHA-256 of ``binary``'s ELA tensors (data.run_ela, as training computes them) for ``images``, by name."""
    with tempfile.TemporaryDirectory() as td:
        run_ela(images, Path(td), Path(td) / "list.txt", binary=binary)
        return {p.name: sha256(Path(td) / (p.stem + ".npy")) for p in images}


def make(args) -> None:
    out = Path(args.out)
    if out.exists():
        if not (out / "MANIFEST.json").exists():
            raise SystemExit(f"{out} exists and is not a bundle: refusing to overwrite it")
        shutil.rmtree(out)
    budget = int(args.budget_mib * MIB)
    if args.for_device_tool:
        budget = min(budget, 64 * MIB - tree_bytes() - MIB // 2)  # the tool sends the checkout too
    for need in (args.binary, args.weights, BINARY):
        if not Path(need).is_file():
            raise SystemExit(f"missing {need} (build it: see gpu_bundle.py's docstring)")
    (out / "bin").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as td:
        exe = Path(td) / "tamperscope"
        shutil.copy2(args.binary, exe)
        if shutil.which("strip"):  # symbols are a third of the file; the carried binary needs none
            subprocess.run(["strip", str(exe)], check=True)
        (out / "bin" / "tamperscope.xz").write_bytes(lzma.compress(exe.read_bytes(), preset=args.xz_preset))
    (out / "weights").mkdir()
    shutil.copy2(args.weights, out / "weights" / Path(args.weights).name)
    shutil.copytree(Path(__file__).parent, out / "py" / "tamperscope_training",
                    ignore=shutil.ignore_patterns("__pycache__"))
    used = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) + 64 * 1024  # + manifest, run.sh, csv
    if used > budget:
        raise SystemExit(f"binary, weights and code alone take {used / MIB:.1f} MiB, over the budget of "
                         f"{budget / MIB:.1f} MiB")

    # groups of each split in a seeded order; take from whichever split has the smallest share so far
    rng = random.Random(args.seed)
    splits = args.data.split(",")
    pending, header, taken, total = {}, {}, {s: [] for s in splits}, {}
    for s in splits:
        header[s], rows = read_rows(s)
        groups: dict[str, list[dict]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(group_key(row, i), []).append(row)
        order = sorted(groups)
        rng.shuffle(order)
        pending[s] = [groups[k] for k in order]
        total[s] = len(rows)
    root = {s: labels_csv(s).parent for s in splits}
    while True:
        live = [s for s in splits if pending[s]]
        if not live:
            break
        s = min(live, key=lambda s: sum(len(g) for g in taken[s]) / total[s])
        grp = pending[s].pop(0)
        # each image also costs a labels.csv row and a MANIFEST.json line (about 200 bytes together)
        size = sum((root[s] / r["image"]).stat().st_size + 256 for r in grp)
        if used + size > budget:
            pending[s] = []  # that split is full; the others may still fit smaller groups
            continue
        used += size
        taken[s].append(grp)

    val_rows, counts = [], {}
    val_dir = out / "data" / "bundle_val"
    (val_dir / "images").mkdir(parents=True)
    for s in splits:
        n_val = round(len(taken[s]) * args.val_fraction)
        held, kept = taken[s][:n_val], taken[s][n_val:]
        d = out / "data" / s
        (d / "images").mkdir(parents=True)
        rows = [r for g in kept for r in g]
        for r in rows:
            shutil.copy2(root[s] / r["image"], d / r["image"])
        with open(d / "labels.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header[s])
            w.writeheader()
            w.writerows(rows)
        if (root[s] / "recipe.json").exists():
            shutil.copy2(root[s] / "recipe.json", d / "recipe.json")
        for r in (r for g in held for r in g):
            name = f"{s}__{Path(r['image']).name}"
            val_rows.append({"image": f"images/{name}", "label": r["label"], "kind": r["kind"], "split_of": s})
            shutil.copy2(root[s] / r["image"], val_dir / "images" / name)
        counts[s] = {"images": len(rows), "of": total[s], "held_out": sum(len(g) for g in held)}
    if not val_rows:
        raise SystemExit("the budget leaves no images for the held-out part: raise --budget-mib or --val-fraction")
    with open(val_dir / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(val_rows[0]))
        w.writeheader()
        w.writerows(val_rows)

    # reference ELA from the release binary the CPU recipe uses; the machine must reproduce it bit for bit
    ref_images = sorted((val_dir / "images").iterdir())[:N_REFERENCE]
    manifest = {
        "commit": git_commit(), "data": counts, "data_splits": args.data, "val": "bundle_val",
        "train_args": args.train_args, "budget_bytes": budget, "seed": args.seed,
        "codec": codec_ident(BINARY), "reference_ela": ela_hashes(BINARY, ref_images),
        "reference_dir": "data/bundle_val/images",
        "weights": f"weights/{Path(args.weights).name}",
        "files": {str(p.relative_to(out)): sha256(p) for p in sorted(out.rglob("*")) if p.is_file()},
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
    run = out / "run.sh"
    run.write_text(RUN_SH.format(data=args.data, train=args.train_args, commit=manifest["commit"]))
    run.chmod(0o755)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if size > budget:
        raise SystemExit(f"bundle is {size} bytes, over its budget of {budget}: a bug in the estimate")
    print(json.dumps({"bundle": str(out), "bytes": size, "MiB": round(size / MIB, 2),
                      "budget_MiB": round(budget / MIB, 2), "data": counts, "held_out": len(val_rows)}, indent=1))


RUN_SH = """#!/usr/bin/env bash
# tamperscope GPU recipe, one command: ./run.sh OUT [extra train.py arguments, which override the defaults]
# Needs python3 with torch, torchvision, numpy and pillow; no network. Writes OUT/log.txt, OUT/summary.json,
# OUT/model.pt.partNN (+ OUT/model.json). Made by `python -m tamperscope_training.gpu_bundle make`.
set -euo pipefail
B=$(cd "$(dirname "$0")" && pwd)
OUT=${{1:?usage: run.sh OUT [train.py arguments]}}
shift
W=${{TAMPERSCOPE_WORK:-/tmp/tamperscope-gpu}}
mkdir -p "$OUT" "$W"
export PYTHONPATH="$B/py" PYTHONUNBUFFERED=1 TAMPERSCOPE_CACHE="$W/cache" TAMPERSCOPE_BIN="$W/tamperscope" \\
    TAMPERSCOPE_MNV2_WEIGHTS="$B/weights/mobilenetv2_imagenet_features.pt" TAMPERSCOPE_COMMIT={commit}
python3 -m tamperscope_training.gpu_bundle prepare "$B" 2>&1 | tee "$OUT/log.txt"
python3 -m tamperscope_training.train --data {data} --val bundle_val {train} --out "$W/run" "$@" 2>&1 \\
    | tee -a "$OUT/log.txt"
python3 -m tamperscope_training.gpu_bundle pack "$W/run" "$OUT" 2>&1 | tee -a "$OUT/log.txt"
"""


def verify(bundle: Path, binary: Path, cache: Path) -> dict:
    """Check every file of ``bundle`` against its manifest, unpack the binary to ``binary``, link the
    splits under ``cache`` (where data.py looks) and prove that this machine's ELA is the app's (codec
    identity, SHA-256 of the reference tensors). Raises SystemExit with the reason on any mismatch."""
    man = json.loads((bundle / "MANIFEST.json").read_text())
    bad = [f for f, h in man["files"].items() if not (bundle / f).is_file() or sha256(bundle / f) != h]
    if bad:
        raise SystemExit(f"bundle damaged: {len(bad)} files missing or changed, e.g. {bad[:3]}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_bytes(lzma.decompress((bundle / "bin" / "tamperscope.xz").read_bytes()))
    binary.chmod(0o755)
    cache.mkdir(parents=True, exist_ok=True)
    for d in (bundle / "data").iterdir():
        link = cache / d.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(d, target_is_directory=True)
    if codec_ident(binary) != man["codec"]:
        raise SystemExit(f"ELA codec differs: {codec_ident(binary)!r}, bundle made with {man['codec']!r}")
    ref = sorted((bundle / man["reference_dir"]).iterdir())[:N_REFERENCE]
    got = ela_hashes(binary, ref)
    if got != man["reference_ela"]:
        raise SystemExit(f"ELA is not bit-identical to the app's: {got} != {man['reference_ela']}")
    return {"bundle": str(bundle), "commit": man["commit"], "files_checked": len(man["files"]),
            "ela_bit_identical_on": len(got), "data": man["data"]}


def prepare(args) -> None:
    """On the training machine (run.sh): ``verify``, then say which torch and device will train."""
    res = verify(Path(args.bundle).resolve(), Path(os.environ["TAMPERSCOPE_BIN"]),
                 Path(os.environ["TAMPERSCOPE_CACHE"]))
    try:
        import torch
    except ImportError:
        raise SystemExit("python3 has no torch") from None
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU: CPU"
    print(f"torch {torch.__version__}, {dev}")
    print(json.dumps(res))


def pack(args) -> None:
    """On the training machine: the run's checkpoint in parts under 15 MiB, its summary and their hashes."""
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = (run / "model.pt").read_bytes()
    parts = []
    for i in range(0, len(data), PART):
        name = f"model.pt.part{i // PART:02d}"
        (out / name).write_bytes(data[i:i + PART])
        parts.append(name)
    (out / "model.json").write_text(json.dumps({"parts": parts, "sha256": hashlib.sha256(data).hexdigest(),
                                                "bytes": len(data)}, indent=1))
    shutil.copy2(run / "summary.json", out / "summary.json")
    print(f"packed {len(data)} bytes in {len(parts)} parts to {out}")


def unpack(args) -> None:
    """Here: rebuild ``--run`` (model.pt, summary.json, log.txt) from what the machine brought back."""
    src, run = Path(args.src), Path(args.run)
    meta = json.loads((src / "model.json").read_text())
    data = b"".join((src / p).read_bytes() for p in meta["parts"])
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise SystemExit("model.pt parts do not add up to the checkpoint that was packed")
    run.mkdir(parents=True, exist_ok=True)
    (run / "model.pt").write_bytes(data)
    for f in ("summary.json", "log.txt"):
        if (src / f).exists():
            shutil.copy2(src / f, run / f)
    print(f"{run}/model.pt ({len(data)} bytes, SHA-256 checked); next: evalrun --run {run} --name NAME")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the bundle (here, in a checkout with the app built)")
    m.add_argument("--out", required=True)
    m.add_argument("--data", default=DEFAULT_DATA, help="training splits to draw images from")
    m.add_argument("--budget-mib", type=float, default=64.0, help="the bundle's size limit")
    m.add_argument("--for-device-tool", action="store_true",
                   help="also leave room for this checkout, which the device tool sends beside carried paths")
    m.add_argument("--val-fraction", type=float, default=0.1, help="share of groups held out for the log")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--train-args", default=DEFAULT_TRAIN)
    m.add_argument("--binary", default=str(HEADLESS))
    m.add_argument("--weights", default=str(MNV2))
    m.add_argument("--xz-preset", type=int, default=9 | lzma.PRESET_EXTREME, help="the binary's compression")
    p = sub.add_parser("prepare", help="(run.sh) verify the bundle and this machine's ELA")
    p.add_argument("bundle")
    k = sub.add_parser("pack", help="(run.sh) checkpoint in parts for the trip back")
    k.add_argument("run")
    k.add_argument("out")
    u = sub.add_parser("unpack", help="rebuild the run folder from what came back")
    u.add_argument("src")
    u.add_argument("--run", required=True)
    args = ap.parse_args(argv)
    {"make": make, "prepare": prepare, "pack": pack, "unpack": unpack}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
