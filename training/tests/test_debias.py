"""The global bias model of train.py --debias-global: it sees global statistics only, learns a global cue,
and its training logits are cross-fitted."""
import torch

from tamperscope_training.debias import LogisticBias, cross_fitted_logits, global_stats
from tamperscope_training.data import metrics


def test_global_stats_carry_no_location():
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 5, 4, 4, generator=g)]
    s = global_stats(maps, bs=3)
    assert s.shape == (4, 2 * (3 + 5))
    flipped = global_stats([m.flip(-1).flip(-2) for m in maps])
    assert torch.allclose(s, flipped, atol=1e-6)
    # the mean of channel 0 of the first map
    assert torch.allclose(s[:, 0], maps[0][:, 0].mean((1, 2)), atol=1e-6)


def test_a_global_cue_is_learned_and_cross_fitted():
    g = torch.Generator().manual_seed(1)
    n = 200
    y = (torch.arange(n) % 2).float()
    # label shifts the whole map: a whole-file cue, like CASIA's re-save
    maps = [torch.randn(n, 2, 6, 6, generator=g) + 0.8 * y[:, None, None, None]]
    x = global_stats(maps)
    groups = [f"g{i}" for i in range(n)]
    logit = cross_fitted_logits(x, y, groups, folds=5)
    assert metrics(torch.sigmoid(logit).numpy(), y.numpy())["auc"] > 0.95
    # a fit on noise features predicts held-out labels at chance, while its in-sample fit looks better
    noise = torch.randn(n, 40, generator=g)
    held = metrics(torch.sigmoid(cross_fitted_logits(noise, y, groups, l2=1e-4)).numpy(), y.numpy())["auc"]
    insample = metrics(torch.sigmoid(LogisticBias(1e-4).fit(noise, y).logit(noise)).numpy(), y.numpy())["auc"]
    assert held < 0.65 < insample


def test_twins_share_a_fold():
    # twins with identical features and opposite labels: if they were split across folds the held-out twin
    # would be predicted from its sibling; in the same fold, both get the same logit
    n = 60
    x = torch.randn(n // 2, 4, generator=torch.Generator().manual_seed(2)).repeat_interleave(2, 0)
    y = torch.tensor([0.0, 1.0] * (n // 2))
    groups = [f"pair{i // 2}" for i in range(n)]
    logit = cross_fitted_logits(x, y, groups, folds=3)
    assert torch.allclose(logit[0::2], logit[1::2])
