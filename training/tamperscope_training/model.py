"""WCBnet (METHOD.md s.2): backbone blocks F_1..F_5, cross-block attention CBAM_i, GAP + dense head.

One network, one shared backbone, three CBAM heads (variants i = 2, 3, 4). Backbones:
  * ``mobilenetv2`` - torchvision MobileNetV2 ``features[0:18]`` (F_1..F_5 at strides 2..32,
    channels 16/24/32/96/320), optionally initialised from ImageNet weights;
  * ``resnet50`` - torchvision ResNet-50 (F_1 = stem before max-pool, F_2..F_5 = layer1..layer4,
    channels 64/256/512/1024/2048), from scratch (no ImageNet ResNet weights here).
``ResNet50Baseline`` is the plain ResNet-50 image classifier (the paper's comparison).
``WCBNet(attention=False, variants=(5,))`` is the same comparison on the shipped backbone: no
cross-block attention, the head sits on F_5 (so "variant 5": Fc = F_5, 320 channels).
``centre=True`` (an experiment, not METHOD.md): Fc_v is replaced by ReLU(Fc_v - its spatial mean), so
the head sees only where a channel departs from the image's own average; a cue spread evenly over the
whole image (a re-save of the entire file) cannot raise the logit. Grad-CAM stays exact: the exported
features are the centred ones and the head is still GAP + dense on them.
``pool="lse"`` (a named variant, not the paper's head; issue 19): the logit is a log-sum-exp over positions
of the per-position score s[h,w] = w . Fc[:,h,w] (Pinheiro & Collobert, "From image-level to pixel-level
labeling with convolutional networks", CVPR 2015, eq. 3):
  z = b + (1/r) log( (1/(h w)) sum_{h,w} exp(r s[h,w]) ),  r = ``LSE_R``.
Under GAP a region's evidence counts in proportion to its area; under LSE the strongest positions
decide, so the logit depends on where the evidence is. Grad-CAM stays exact from the exported outputs:
dz/dFc[k,h,w] = w_k softmax(r s)[h,w], whose spatial mean is w_k / (h w) because the softmax sums to 1,
so alpha = w / (h w) exactly as for GAP (METHOD.md s.3 and s.8; tests/test_model.py checks it by autograd).
``SeparateWCBNets`` is three single-variant WCBnets (their own blocks 4-5, CBAM and head) that share
only the frozen, cached ImageNet blocks: METHOD.md s.2's "separate networks" against the shared one.

CBAM_i (cross-block attention), for a target block i of spatial size (h_i, w_i):
  R_j = ReLU(BN(Conv1x1(F_j))) -> d channels, rescaled to (h_i, w_i): finer blocks are average-pooled
        by an integer factor *before* the projection, coarser ones bilinearly upsampled after it;
  g_j = GAP(R_j); q_j = W_q g_j, k_j = W_k g_j; A = softmax_k(q_j . k_k / sqrt(d_k)) (5 x 5,
        self-attention over blocks);
  O_j = R_j + sum_k A[j, k] R_k (non-negative, since R >= 0 and A >= 0);
  Fc_i = concat_j O_j -> C = 5 d channels.
Head (the paper's): z = dense(GAP(Fc_i)). Since the head is exactly GAP + dense, the Grad-CAM weights are
alpha_k = w_k / (h_i w_i) (METHOD.md s.3); ``forward_all`` also returns them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

VARIANTS = (2, 3, 4)
POOLS = ("gap", "lse")
LSE_R = 4.0  # sharpness of the log-sum-exp pooling: r -> 0 is GAP, r -> inf is max pooling


def pooled_logit(lin: nn.Linear, fc: torch.Tensor, pool: str) -> torch.Tensor:
    """[N, C, h, w] -> logit [N, 1]: GAP + dense (the paper's head), or log-sum-exp over positions of the
    per-position dense score (module docstring). The two agree for a spatially constant Fc."""
    if pool == "gap":
        return lin(fc.mean(dim=(2, 3)))
    if pool != "lse":
        raise ValueError(f"unknown pooling {pool!r}; expected one of {POOLS}")
    s = torch.einsum("nchw,oc->nohw", fc, lin.weight).flatten(2)  # [N, 1, h w]
    return (torch.logsumexp(LSE_R * s, dim=2) - math.log(s.shape[2])) / LSE_R + lin.bias


def load_legacy_features(feats: nn.Sequential, sd: dict) -> None:
    """Load MobileNetV2 ``features.*`` weights, also from the legacy flat key layout
    (``features.2.conv.3.weight`` instead of ``2.conv.1.0.weight``): keys are matched in order within
    each block, with shapes checked."""
    own = feats.state_dict()
    new = {}
    for blk in sorted({k.split(".")[0] for k in own}, key=int):
        mine = [k for k in own if k.split(".")[0] == blk]
        theirs = [k for k in sd if k.startswith(f"features.{blk}.")]
        assert len(mine) == len(theirs), (blk, len(mine), len(theirs))
        for a, b in zip(mine, theirs):
            assert a.rsplit(".", 1)[1] == b.rsplit(".", 1)[1] and own[a].shape == sd[b].shape, (a, b)
            new[a] = sd[b]
    feats.load_state_dict(new, strict=True)


class MobileNetV2Blocks(nn.Module):
    """MobileNetV2 blocks. F_1 (stride 2) is returned average-pooled 2x2 to stride 4: CBAM only ever
    average-pools it further (to blocks 2..4) and pooling composes exactly, so this changes nothing in
    the maths but lets training cache it at a quarter of the size.

    ``frozen`` first blocks (default 3: F_1..F_3) keep their ImageNet weights and BN statistics
    (eval mode, no gradient): on 2 CPU cores their full-resolution backward pass is what makes
    training too slow, and freezing them lets training cache their outputs once (``stem``)."""

    SPLITS = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 18))
    CHANNELS = (16, 24, 32, 96, 320)

    def __init__(self, weights_path: str | None = None, frozen: int = 3):
        super().__init__()
        feats = torchvision.models.mobilenet_v2(weights=None).features
        if weights_path:
            load_legacy_features(feats, torch.load(weights_path, map_location="cpu", weights_only=False))
        self.blocks = nn.ModuleList(nn.Sequential(*[feats[i] for i in range(a, b)]) for a, b in self.SPLITS)
        self.channels = self.CHANNELS
        self.frozen = frozen
        for b in self.blocks[:frozen]:
            b.eval()  # frozen blocks are *always* in eval mode (running BN statistics)
            for p in b.parameters():
                p.requires_grad_(False)

    @torch.no_grad()
    def recalibrate_frozen_bn(self, batches) -> None:
        """Re-estimate the frozen blocks' BN running statistics on ELA inputs (cumulative average over
        ``batches``; no labels), then freeze them again. ImageNet statistics are for normalised RGB,
        not for error levels."""
        bns = [m for b in self.blocks[: self.frozen] for m in b.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        for b in self.blocks[: self.frozen]:
            b.train()
        for x in batches:
            self.stem(x)
        for m in bns:
            m.momentum = 0.1
        for b in self.blocks[: self.frozen]:
            b.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        for b in self.blocks[: self.frozen]:
            b.eval()
        return self

    def stem(self, x):
        """The frozen blocks' outputs (F_1 pooled to stride 4, F_2, ...)."""
        out = []
        for i in range(self.frozen):
            x = self.blocks[i](x)
            out.append(F.avg_pool2d(x, 2) if i == 0 else x)
        return out

    def rest(self, stem_out):
        out = list(stem_out)
        x = out[-1]
        if len(out) < self.frozen:  # cache made with fewer frozen blocks: run the missing ones
            with torch.no_grad():
                for b in self.blocks[len(out):self.frozen]:
                    x = b(x)
                    out.append(x)
        for b in self.blocks[len(out):]:
            x = b(x)
            out.append(x)
        return out

    def forward(self, x):
        return self.rest(self.stem(x))


class ResNet50Blocks(nn.Module):
    CHANNELS = (64, 256, 512, 1024, 2048)

    def __init__(self):
        super().__init__()
        r = torchvision.models.resnet50(weights=None)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.pool = r.maxpool
        self.layers = nn.ModuleList([r.layer1, r.layer2, r.layer3, r.layer4])
        self.channels = self.CHANNELS

    def forward(self, x):
        x = self.stem(x)
        out = [x]
        x = self.pool(x)
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


def rescale(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    # python ints: the input size is fixed (384 x 384), so the export bakes these in as constants
    xh, xw, h, w = int(x.shape[-2]), int(x.shape[-1]), int(h), int(w)
    if (xh, xw) == (h, w):
        return x
    if xh > h:
        assert xh % h == 0 and xw % w == 0, (xh, xw, h, w)
        return F.avg_pool2d(x, kernel_size=(xh // h, xw // w))
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


class CrossBlockAttention(nn.Module):
    def __init__(self, in_channels, target: int, d: int = 64, dk: int = 32):
        super().__init__()
        self.target = target  # 1-based block index i
        self.proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, d, 1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True)) for c in in_channels
        )
        self.q = nn.Linear(d, dk)
        self.k = nn.Linear(d, dk)
        self.dk = dk
        self.out_channels = d * len(in_channels)

    def forward(self, feats):
        h, w = feats[self.target - 1].shape[-2:]
        rs = []
        for p, f in zip(self.proj, feats):
            # pool first (cheaper; pooling commutes with the 1x1 conv), upsample after projecting
            rs.append(p(rescale(f, h, w)) if f.shape[-2] >= h else rescale(p(f), h, w))
        r = torch.stack(rs, dim=1)  # N,B,d,h,w
        g = r.mean(dim=(3, 4))  # N,B,d
        att = torch.softmax(self.q(g) @ self.k(g).transpose(1, 2) / math.sqrt(self.dk), dim=-1)  # N,B,B
        mixed = torch.einsum("njk,nkchw->njchw", att, r)
        o = r + mixed
        n, b, c = o.shape[:3]
        return o.reshape(n, b * c, h, w)


class BlockSelect(nn.Module):
    """The plain baseline's "fusion": Fc_v = F_v itself, no cross-block attention."""

    def __init__(self, in_channels, target: int):
        super().__init__()
        self.target = target
        self.out_channels = in_channels[target - 1]

    def forward(self, feats):
        return feats[self.target - 1]


class WCBNet(nn.Module):
    def __init__(self, backbone: str = "mobilenetv2", weights_path: str | None = None, d: int = 64,
                 variants=VARIANTS, dropout: float = 0.2, frozen: int = 3, attention: bool = True,
                 centre: bool = False, pool: str = "gap"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}; expected one of {POOLS}")
        self.pool = pool
        if backbone == "mobilenetv2":
            self.backbone = MobileNetV2Blocks(weights_path, frozen=frozen)
        elif backbone == "resnet50":
            self.backbone = ResNet50Blocks()
        else:
            raise ValueError(backbone)
        self.backbone_name = backbone
        self.variants = tuple(variants)
        self.attention = attention
        self.centre = centre
        self.d = d
        fuse = (lambda v: CrossBlockAttention(self.backbone.channels, v, d)) if attention else (
            lambda v: BlockSelect(self.backbone.channels, v))
        self.cbam = nn.ModuleDict({str(v): fuse(v) for v in self.variants})
        self.heads = nn.ModuleDict({str(v): nn.Linear(self.cbam[str(v)].out_channels, 1) for v in self.variants})
        self.drop = nn.Dropout(dropout)

    def features(self, x=None, stem=None):
        """Fc_v for every variant: dict v -> [N, C, h_v, w_v]. ``stem``: cached frozen-block outputs."""
        feats = self.backbone(x) if stem is None else self.backbone.rest(stem)
        fcs = {v: self.cbam[str(v)](feats) for v in self.variants}
        if self.centre:
            fcs = {v: F.relu(fc - fc.mean(dim=(2, 3), keepdim=True)) for v, fc in fcs.items()}
        return fcs

    def config(self) -> dict:
        return {"kind": "shared" if self.attention else "plain", "backbone": self.backbone_name,
                "d": self.d, "frozen": getattr(self.backbone, "frozen", 0), "variants": list(self.variants),
                "centre": self.centre, "pool": self.pool}

    def head(self, v: int, fc: torch.Tensor) -> torch.Tensor:
        if self.pool == "gap":
            return self.heads[str(v)](self.drop(fc.mean(dim=(2, 3))))
        return pooled_logit(self.heads[str(v)], self.drop(fc), self.pool)

    def forward(self, x=None, stem=None):
        """Logits, [N, len(variants)]."""
        fcs = self.features(x, stem)
        return torch.cat([self.head(v, fcs[v]) for v in self.variants], dim=1)

    def forward_all(self, x):
        """dict v -> (logit [N,1], Fc [N,C,h,w], alpha [N,C]); alpha = w / (h w) (exact Grad-CAM weights)."""
        return self.outputs(self.features(x))

    def outputs(self, fcs):
        out = {}
        for v in self.variants:
            fc = fcs[v]
            lin = self.heads[str(v)]
            logit = pooled_logit(lin, fc, self.pool)
            hw = fc.shape[2] * fc.shape[3]
            alpha = (lin.weight / hw).expand(fc.shape[0], -1)
            out[v] = (logit, fc, alpha)
        return out


class SeparateWCBNets(nn.Module):
    """One single-variant WCBnet per variant; only the frozen ImageNet blocks (identical in all three,
    never trained) are run once and shared, exactly as three separate networks would compute them."""

    def __init__(self, weights_path: str | None = None, d: int = 64, variants=VARIANTS, frozen: int = 3,
                 pool: str = "gap"):
        super().__init__()
        assert frozen > 0, "separate networks share only frozen blocks"
        self.variants = tuple(variants)
        self.pool = pool
        self.nets = nn.ModuleList(WCBNet("mobilenetv2", weights_path, d, (v,), frozen=frozen, pool=pool)
                                  for v in self.variants)
        self.backbone_name = "mobilenetv2"
        self.d = d

    @property
    def backbone(self):
        """The frozen blocks' owner (the stem cache restores their state here)."""
        return self.nets[0].backbone

    def features(self, x=None, stem=None):
        if stem is None:
            stem = self.backbone.stem(x)
        out = {}
        for net in self.nets:
            out.update(net.features(stem=stem))
        return out

    def head(self, v: int, fc: torch.Tensor) -> torch.Tensor:
        """Variant ``v``'s logit from its Fc, through that variant's own network."""
        return self.nets[self.variants.index(v)].head(v, fc)

    def forward(self, x=None, stem=None):
        fcs = self.features(x, stem)
        return torch.cat([self.head(v, fcs[v]) for v in self.variants], dim=1)

    def forward_all(self, x):
        fcs = self.features(x)
        out = {}
        for v, net in zip(self.variants, self.nets):
            out.update(net.outputs({v: fcs[v]}))
        return out

    def config(self) -> dict:
        return {"kind": "separate", "backbone": "mobilenetv2", "d": self.d, "frozen": self.backbone.frozen,
                "variants": list(self.variants), "pool": self.pool}


class ResNet50Baseline(nn.Module):
    """Plain ResNet-50 image classifier (one logit), the paper's baseline. Its head is torchvision's GAP +
    dense on layer4, so it keeps the classifier contract as "variant 5" (Fc = F_5, 2048 channels at stride
    32) and its Grad-CAM weights are exactly alpha = w / (h w): the app evaluates it like a WCBnet."""

    variants = (5,)

    def __init__(self):
        super().__init__()
        self.net = torchvision.models.resnet50(weights=None, num_classes=1)

    def features(self, x=None, stem=None):
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return {5: n.layer4(n.layer3(n.layer2(n.layer1(x))))}

    def head(self, v: int, fc: torch.Tensor) -> torch.Tensor:
        return self.net.fc(fc.mean(dim=(2, 3)))

    def forward(self, x=None, stem=None):
        return self.head(5, self.features(x)[5])

    def forward_all(self, x):
        fc = self.features(x)[5]
        alpha = (self.net.fc.weight / (fc.shape[2] * fc.shape[3])).expand(fc.shape[0], -1)
        return {5: (self.head(5, fc), fc, alpha)}

    def config(self) -> dict:
        return {"kind": "resnet50-plain"}


MODEL_NAMES = ("wcb-mobilenetv2", "wcb-mobilenetv2-separate", "wcb-mobilenetv2-separate-lse", "wcb-mobilenetv2-centred", "plain-mobilenetv2",
               "plain-mobilenetv2-centred", "wcb-mobilenetv2-scratch", "wcb-resnet50", "resnet50")


def build(name: str, weights_path: str | None = None, frozen: int = 3, d: int = 64) -> nn.Module:
    if name == "wcb-mobilenetv2":
        return WCBNet("mobilenetv2", weights_path, frozen=frozen, d=d)
    if name in ("plain-mobilenetv2", "plain-mobilenetv2-centred"):
        return WCBNet("mobilenetv2", weights_path, frozen=frozen, variants=(5,), attention=False,
                      centre=name.endswith("-centred"))
    if name == "wcb-mobilenetv2-centred":
        return WCBNet("mobilenetv2", weights_path, frozen=frozen, d=d, centre=True)
    if name == "wcb-mobilenetv2-separate":
        return SeparateWCBNets(weights_path, d=d, frozen=frozen)
    if name == "wcb-mobilenetv2-separate-lse":
        return SeparateWCBNets(weights_path, d=d, frozen=frozen, pool="lse")
    if name == "wcb-mobilenetv2-scratch":
        return WCBNet("mobilenetv2", None, frozen=0)
    if name == "wcb-resnet50":
        return WCBNet("resnet50")
    if name == "resnet50":
        return ResNet50Baseline()
    raise ValueError(name)


def load_checkpoint(path) -> nn.Module:
    """A WCBNet (shared, plain or separate) from a training checkpoint ({"config": ..., "state_dict": ...});
    configs without "kind" are the shared WCBnet of the first runs."""
    ck = torch.load(path, map_location="cpu")
    cfg = ck["config"]
    kind = cfg.get("kind", "shared")
    if kind == "resnet50-plain":
        m = ResNet50Baseline()
    elif kind == "separate":
        m = SeparateWCBNets(None, d=cfg["d"], variants=cfg["variants"], frozen=cfg["frozen"],
                            pool=cfg.get("pool", "gap"))
    elif kind == "plain":
        m = WCBNet(cfg["backbone"], None, frozen=cfg["frozen"], variants=cfg["variants"], attention=False,
                   centre=cfg.get("centre", False))
    else:
        m = WCBNet(cfg["backbone"], None, d=cfg["d"], frozen=cfg["frozen"], centre=cfg.get("centre", False),
                   pool=cfg.get("pool", "gap"))
    m.load_state_dict(ck["state_dict"])
    return m.eval()
