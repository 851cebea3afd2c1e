"""gpu_bundle.py: the GPU recipe's bundle keeps twins together, stays within its budget, refuses a damaged
bundle or a different ELA, and brings the checkpoint back bit for bit.

Needs the release binary (``cargo build --release``); skipped with a message where it is absent. Uses
generated JPEGs in a temporary cache, not the shared data, and no torch.
"""

import csv
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import data, gpu_bundle  # noqa: E402

pytestmark = pytest.mark.skipif(not data.BINARY.is_file(),
                                reason=f"{data.BINARY} absent (cargo build --release): bundle not tested")


@pytest.fixture()
def split(tmp_path, monkeypatch):
    """``casia_pairs_t``: 12 hosts, each an authentic / manipulated twin pair, as selfsplice.py writes."""
    Image = pytest.importorskip("PIL.Image")
    cache = tmp_path / "cache"
    d = cache / "casia_pairs_t"
    (d / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for h in range(12):
        base = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        for label in (0, 1):
            img = base.copy()
            if label:
                img[16:40, 20:60] = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
            name = f"images/pair_{h:02d}_{label}.jpg"
            Image.fromarray(img).save(d / name, quality=85)
            rows.append({"image": name, "label": label, "kind": "authentic" if label == 0 else "splice",
                         "pair": h, "host": f"Au_{h:02d}.jpg"})
    with open(d / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    monkeypatch.setattr(data, "CACHE", cache)
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"stand-in: make only copies the weights")
    return SimpleNamespace(cache=cache, dir=d, rows=rows, weights=weights, tmp=tmp_path)


def make(split, out, budget_mib):
    args = SimpleNamespace(out=str(out), data="casia_pairs_t", budget_mib=budget_mib, for_device_tool=False,
                           val_fraction=0.25, seed=0, train_args="--epochs 1", binary=str(data.BINARY),
                           weights=str(split.weights), xz_preset=0)
    gpu_bundle.make(args)
    return json.loads((out / "MANIFEST.json").read_text())


def read(csv_path):
    with open(csv_path) as f:
        return list(csv.DictReader(f))


def test_bundle_within_budget_twins_together_and_verified(split):
    out = split.tmp / "bundle"
    exe = split.tmp / "stripped"
    shutil.copy2(data.BINARY, exe)
    if shutil.which("strip"):
        subprocess.run(["strip", str(exe)], check=True)
    fixed = len(lzma.compress(exe.read_bytes(), preset=0))
    jpeg = (split.dir / split.rows[0]["image"]).stat().st_size
    # room for the binary, code and about 8 of the 24 images
    budget = (fixed + 300_000 + 8 * jpeg) / gpu_bundle.MIB
    man = make(split, out, budget)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size <= budget * gpu_bundle.MIB
    train = read(out / "data" / "casia_pairs_t" / "labels.csv")
    val = read(out / "data" / "bundle_val" / "labels.csv")
    assert 0 < len(train) + len(val) < len(split.rows), "the budget should force a subset"
    # twins of one host are never split between training and the held-out part
    train_hosts = [r["host"][3:5] for r in train]
    val_hosts = [Path(r["image"]).name.split("__")[1][5:7] for r in val]
    assert val_hosts and not set(train_hosts) & set(val_hosts)
    assert all(train_hosts.count(h) == 2 for h in train_hosts) and all(val_hosts.count(h) == 2 for h in val_hosts)
    assert man["data"]["casia_pairs_t"]["images"] == len(train)

    binary, cache = split.tmp / "m" / "tamperscope", split.tmp / "m" / "cache"
    res = gpu_bundle.verify(out, binary, cache)
    assert res["ela_bit_identical_on"] == min(gpu_bundle.N_REFERENCE, len(val))
    assert (cache / "casia_pairs_t" / "labels.csv").is_file() and (cache / "bundle_val").is_dir()
    assert (out / "run.sh").read_text().count("--val bundle_val") == 1

    # a changed file or a different ELA stops it
    img = next((out / "data" / "casia_pairs_t" / "images").iterdir())
    img.write_bytes(img.read_bytes()[:-10])
    with pytest.raises(SystemExit, match="bundle damaged"):
        gpu_bundle.verify(out, binary, cache)
    man = make(split, out, budget)
    man["reference_ela"] = {k: "0" * 64 for k in man["reference_ela"]}
    (out / "MANIFEST.json").write_text(json.dumps(man))
    with pytest.raises(SystemExit, match="not bit-identical"):
        gpu_bundle.verify(out, binary, cache)


def test_budget_too_small_is_refused(split):
    with pytest.raises(SystemExit, match="over the budget"):
        make(split, split.tmp / "small", 0.5)


def test_checkpoint_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_bundle, "PART", 1000)
    run, back = tmp_path / "run", tmp_path / "back"
    run.mkdir()
    blob = np.random.default_rng(1).bytes(3500)
    (run / "model.pt").write_bytes(blob)
    (run / "summary.json").write_text("{}")
    gpu_bundle.pack(SimpleNamespace(run=str(run), out=str(back)))
    assert len(json.loads((back / "model.json").read_text())["parts"]) == 4
    gpu_bundle.unpack(SimpleNamespace(src=str(back), run=str(tmp_path / "here")))
    assert (tmp_path / "here" / "model.pt").read_bytes() == blob
    part = back / "model.pt.part02"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(SystemExit, match="do not add up"):
        gpu_bundle.unpack(SimpleNamespace(src=str(back), run=str(tmp_path / "again")))
