"""WCBnet shapes, the exact-alpha identity (GAP + dense head) and synth determinism."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

torch = pytest.importorskip("torch", reason="torch not installed")

from tamperscope_training.model import ResNet50Baseline, WCBNet  # noqa: E402

SHARED = Path("/work/shared")


def test_shapes_and_alpha_equals_gradient():
    torch.manual_seed(0)
    m = WCBNet("mobilenetv2", None).eval()
    x = torch.randn(2, 3, 384, 384)
    out = m.forward_all(x)
    sizes = {2: 96, 3: 48, 4: 24}
    for v, (z, fc, alpha) in out.items():
        assert z.shape == (2, 1) and fc.shape == (2, 320, sizes[v], sizes[v]) and alpha.shape == (2, 320)
        assert (fc >= 0).all()
        fcg = m.features(x)[v]
        zz = m.heads[str(v)](fcg.mean(dim=(2, 3)))
        g = torch.autograd.grad(zz.sum(), fcg)[0].mean(dim=(2, 3))
        assert torch.allclose(g, alpha, atol=1e-7)
    assert torch.allclose(m(x), torch.cat([out[v][0] for v in (2, 3, 4)], 1), atol=1e-5)


@pytest.mark.parametrize("name", ["plain-mobilenetv2", "plain-mobilenetv2-centred", "wcb-mobilenetv2-centred",
                                  "wcb-mobilenetv2-separate", "wcb-mobilenetv2-separate-lse"])
def test_baseline_and_experiment_models_keep_the_contract(name, tmp_path):
    """Every model the exporter accepts: logits from forward_all equal forward (full and cached-stem
    paths), alpha is the autograd Grad-CAM weight, and a checkpoint round trip is exact."""
    from tamperscope_training.model import build, load_checkpoint

    torch.manual_seed(0)
    m = build(name, None).eval()
    x = torch.randn(2, 3, 384, 384)
    out = m.forward_all(x)
    assert sorted(out) == sorted(m.variants)
    with torch.no_grad():
        z = m(x)
        assert torch.allclose(z, m(stem=m.backbone.stem(x)), atol=1e-5)
    assert torch.allclose(z, torch.cat([out[v][0] for v in m.variants], 1), atol=1e-5)
    fcs = m.features(x)
    for j, v in enumerate(m.variants):
        g = torch.autograd.grad(m.head(v, fcs[v]).sum(), fcs[v])[0]
        assert torch.allclose(g.mean(dim=(2, 3)), out[v][2], atol=1e-7)
        if getattr(m, "centre", False):
            assert (out[v][1] >= 0).all()
    torch.save({"config": m.config(), "state_dict": m.state_dict()}, tmp_path / "m.pt")
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "m.pt")(x), z)


def test_cached_stem_path_equals_full_forward():
    torch.manual_seed(0)
    m = WCBNet("mobilenetv2", None, frozen=3).eval()
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert torch.allclose(m(x), m(stem=m.backbone.stem(x)), atol=1e-6)
    assert all(not b.training for b in WCBNet("mobilenetv2", None, frozen=3).backbone.blocks[:3])
    m.train()
    assert all(not b.training for b in m.backbone.blocks[:3]) and m.backbone.blocks[3].training
    assert not any(p.requires_grad for p in m.backbone.blocks[0].parameters())
    # the frozen stem must give the same features in train mode as in the exported (eval) model
    with torch.no_grad():
        st_train = m.backbone.stem(x)
        m.eval()
        st_eval = m.backbone.stem(x)
    assert all(torch.equal(a, b) for a, b in zip(st_train, st_eval))


def test_bn_recalibration_changes_only_frozen_stats():
    torch.manual_seed(0)
    m = WCBNet("mobilenetv2", None, frozen=3)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.backbone.recalibrate_frozen_bn([torch.randn(2, 3, 384, 384) * 3])
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("backbone.blocks.") and int(k.split(".")[2]) < 3 for k in changed)
    assert all("running" in k or "num_batches" in k for k in changed)
    assert all(not b.training for b in m.backbone.blocks[:3])


def test_resnet50_variants_build():
    m = WCBNet("resnet50").eval()
    b = ResNet50Baseline().eval()
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        assert m(x).shape == (1, 3)
        assert b(x).shape == (1, 1)


def test_imagenet_init_loads():
    w = SHARED / "models" / "mobilenetv2_imagenet_features.pt"
    if not w.exists():
        pytest.skip(f"{w} missing (shared/ not available)")
    m = WCBNet("mobilenetv2", str(w))
    sd = torch.load(w, map_location="cpu", weights_only=False)
    assert torch.equal(m.backbone.blocks[0][0][0].weight, sd["features.0.0.weight"])


def test_synth_deterministic():
    photos = SHARED / "data" / "photos"
    if not photos.exists():
        pytest.skip(f"{photos} missing (shared/ not available)")
    from tamperscope_training.synth import list_photos, make_one

    ps = list_photos(photos)
    for i in range(3):
        a = make_one(i, 5, 1, ps, photos)
        b = make_one(i, 5, 1, ps, photos)
        assert np.array_equal(np.asarray(a[0]), np.asarray(b[0])) and np.array_equal(a[1], b[1])
        assert a[0].size in ((384, 256), (256, 384))


def test_metrics():
    from tamperscope_training.data import metrics

    r = metrics(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 0, 1]))
    assert r["auc"] == 0.75 and r["acc"] == 0.5


def test_resnet50_baseline_keeps_the_contract(tmp_path):
    """The plain ResNet-50 baseline as "variant 5": its logit is torchvision's, alpha is the autograd
    Grad-CAM weight, and a checkpoint round trip is exact (so evalrun can export and evaluate it)."""
    from tamperscope_training.model import build, load_checkpoint

    torch.manual_seed(0)
    m = build("resnet50").eval()
    x = torch.randn(2, 3, 96, 96)
    out = m.forward_all(x)
    with torch.no_grad():
        assert torch.allclose(m(x), m.net(x), atol=1e-5)
        assert torch.allclose(out[5][0], m.net(x), atol=1e-5)
    fc = m.features(x)[5]
    assert fc.shape == (2, 2048, 3, 3)
    g = torch.autograd.grad(m.head(5, fc).sum(), fc)[0]
    assert torch.allclose(g.mean(dim=(2, 3)), out[5][2], atol=1e-9)
    torch.save({"config": m.config(), "state_dict": m.state_dict()}, tmp_path / "m.pt")
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "m.pt")(x), m(x))


def test_lse_pooling_reads_where_the_evidence_is():
    """The log-sum-exp head (issue 19's named variant): equal to GAP + dense on a spatially constant map,
    above it (Jensen) when the same total evidence is concentrated in one place, and its logit grows as
    the evidence concentrates, where GAP's stays put."""
    from tamperscope_training.model import pooled_logit

    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 1)
    flat = torch.rand(1, 8, 1, 1).expand(1, 8, 12, 12).contiguous()
    assert torch.allclose(pooled_logit(lin, flat, "lse"), pooled_logit(lin, flat, "gap"), atol=1e-5)
    w = lin.weight.detach().clamp(min=0)[0]
    spread = torch.zeros(1, 8, 12, 12)
    spread[0, :, :6, :] = w[:, None, None]  # half the image
    peak = torch.zeros(1, 8, 12, 12)
    peak[0, :, :3, :6] = 4 * w[:, None, None]  # same total, an eighth of the area
    gap = [pooled_logit(lin, t, "gap").item() for t in (spread, peak)]
    lse = [pooled_logit(lin, t, "lse").item() for t in (spread, peak)]
    assert abs(gap[0] - gap[1]) < 1e-5
    assert lse[1] > lse[0] > gap[0]
    with pytest.raises(ValueError):
        pooled_logit(lin, flat, "max")


def test_position_scores_pool_to_the_lse_logit_and_weak_targets_follow_the_labels(tmp_path, monkeypatch):
    """The auxiliary loss of train.py (issue 19, item 5) supervises the per-position scores that the LSE
    head pools: pooling them gives the model's own logit. Weak targets exist only for manipulated
    casia_rq images whose original file has a compression map, and keep its geometry."""
    from PIL import Image

    from tamperscope_training import train
    from tamperscope_training.model import LSE_R, build

    torch.manual_seed(0)
    m = build("wcb-mobilenetv2-separate-lse", None).eval()
    x = torch.randn(2, 3, 384, 384)
    with torch.no_grad():
        fcs = m.features(x)
        s = train.position_scores(m, fcs)
        for j, v in enumerate(m.variants):
            sv = s[v].flatten(1)
            pooled = (torch.logsumexp(LSE_R * sv, dim=1) - np.log(sv.shape[1])) / LSE_R
            assert torch.allclose(pooled, m(x)[:, j], atol=1e-4)
        # --aux-on cam supervises w.f, the score less the head's bias (Grad-CAM before its ReLU)
        cam = train.position_scores(m, fcs, with_bias=False)
        for v in m.variants:
            bias = m.nets[m.variants.index(v)].heads[str(v)].bias
            assert torch.allclose(cam[v], s[v] - bias, atol=1e-5)

    split = tmp_path / "casia_rq_t"
    split.mkdir()
    (split / "labels.csv").write_text("image,label,kind\nimages/rq_Sp_a.jpg,1,splicing\n"
                                      "images/rq_Au_b.jpg,0,authentic\nimages/rq_Sp_c.jpg,1,splicing\n")
    weak = tmp_path / "weak"
    (weak / "Sp_a").mkdir(parents=True)
    left = np.zeros((256, 384), np.uint8)
    left[:, :192] = 255
    Image.fromarray(left).save(weak / "Sp_a" / "compression_raw.png")
    monkeypatch.setattr(train, "labels_csv", lambda sp: tmp_path / sp / "labels.csv")
    t, has = train.weak_dq_targets(["casia_rq_t"], weak)
    assert has.tolist() == [True, False, False]
    assert t.shape == (3, 1, train.AUX_SIDE, train.AUX_SIDE)
    half = train.AUX_SIDE // 2
    assert float(t[0, 0, :, : half - 1].min()) == 1.0 and float(t[0, 0, :, half + 1:].max()) == 0.0
    assert float(t[1].abs().max()) == 0.0


def test_generated_mask_targets_follow_the_generators_masks_and_never_casia(tmp_path, monkeypatch):
    """train --aux-mask: generated manipulated images get their own mask (square-resized like the ELA
    input), generated authentic images an all-zero target, and CASIA images none, even with a mask column."""
    from PIL import Image

    from tamperscope_training import train

    gen = tmp_path / "synth_t"
    (gen / "masks").mkdir(parents=True)
    top = np.zeros((200, 300), np.uint8)
    top[:100] = 255
    Image.fromarray(top).save(gen / "masks" / "a.png")
    (gen / "labels.csv").write_text("image,label,kind,mask\nimages/a.jpg,1,splice,masks/a.png\n"
                                    "images/b.jpg,0,authentic,\nimages/c.jpg,1,copy-move,\n")
    casia = tmp_path / "casia_rq_t"
    casia.mkdir()
    (casia / "labels.csv").write_text("image,label,kind,mask\nimages/rq_Sp_a.jpg,1,splicing,masks/a.png\n"
                                      "images/rq_Au_b.jpg,0,authentic,\n")
    monkeypatch.setattr(train, "labels_csv", lambda sp: tmp_path / sp / "labels.csv")
    t, has = train.generated_mask_targets(["synth_t", "casia_rq_t"])
    assert has.tolist() == [True, True, False, False, False]
    assert t.shape == (5, 1, train.AUX_SIDE, train.AUX_SIDE)
    half = train.AUX_SIDE // 2
    assert float(t[0, 0, : half - 1].min()) == 1.0 and float(t[0, 0, half + 1:].max()) == 0.0
    assert float(t[1:].abs().max()) == 0.0
