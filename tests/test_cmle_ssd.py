"Property and round-trip tests for CMLE (Eq. 8-13), the SSD encoder's pieces and the Eq. 14 scorer."
import io, warnings
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.manifold._locally_linear import barycenter_weights

from cmg_nb.cmle import cluster_texts, lle_weights, global_guidance_loss, FeatureBank
from cmg_nb.scoring import MahalanobisScorer, evaluate, summarize_runs


@pytest.mark.parametrize("n,d,k,reg", [(30, 4, 2, 1e-3), (90, 12, 3, 1e-3), (60, 50, 2, 1e-2), (25, 3, 1, 1e-6)])
def test_lle_weights_match_sklearn_barycenters(n, d, k, reg):
    "Eq. 9 (all members) equals scikit-learn's barycenter weights computed cluster by cluster."
    rng = np.random.default_rng(n + d)
    Y = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    W = lle_weights(Y, labels, reg=reg)
    assert isinstance(W, sp.csr_matrix) and W.shape == (n, n)
    Y64 = Y.astype(np.float64)
    for g in np.unique(labels):
        m = np.flatnonzero(labels == g)
        others = np.array([np.delete(m, i) for i in range(len(m))])
        ref = barycenter_weights(Y64[m], Y64, others, reg=reg)
        np.testing.assert_allclose(W[m][:, m].toarray()[np.arange(len(m))[:, None], np.searchsorted(m, others)], ref, atol=1e-8)
    outside = W.toarray()[labels[:, None] != labels[None, :]]
    assert (outside == 0).all()


def test_knn_weights_with_duplicates_never_use_self():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(12, 3))
    Y = np.concatenate([Y, Y[:4], Y[:4]])  # each of rows 0..3 appears three times
    W = lle_weights(Y, n_neighbors=3)
    np.testing.assert_allclose(W.diagonal(), 0)
    np.testing.assert_allclose(np.asarray(W.sum(1)).ravel(), 1, atol=1e-10)
    assert (np.diff(W.indptr) == 3).all()


@pytest.mark.parametrize("seed", range(6))
def test_cluster_texts_small_and_duplicated_inputs(seed):
    "Labels are 0..K'-1, clusters have >= 2 members when n >= 2, and duplicates share a label."
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    base = rng.normal(size=(max(1, n // 2), 5))
    Y = base[rng.integers(0, len(base), n)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab = cluster_texts(Y, k=5, seed=seed)
    assert lab.dtype == np.int64 and len(lab) == n
    assert set(lab) == set(range(lab.max() + 1))
    assert np.bincount(lab).min() >= 2
    for i in range(n):
        for j in range(n):
            if (Y[i] == Y[j]).all(): assert lab[i] == lab[j]
    lle_weights(Y, lab)  # every cluster can be reconstructed


def test_feature_bank_sees_neighbours_outside_the_batch():
    "With the bank holding the current features, a batch's loss rows equal the full-data Eq. 13 rows."
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(50, 6))
    W = lle_weights(Y, cluster_texts(Y, k=2))
    Fall = torch.randn(50, 8, dtype=torch.float64)
    idx = np.array([1, 5, 9, 20, 33])
    bank = FeatureBank(Fall)
    full_rows = ((Fall - torch.tensor(W.toarray()) @ Fall)[idx] ** 2).sum(1).mean()
    torch.testing.assert_close(bank.loss(W, idx, Fall[idx]), full_rows)
    torch.testing.assert_close(global_guidance_loss(Fall[idx], W[idx], Fall), full_rows)


def test_scorer_state_round_trips_through_files(tmp_path):
    rng = np.random.default_rng(0)
    F, T = rng.normal(size=(80, 16)), rng.normal(size=(10, 16))
    s = MahalanobisScorer(n_clusters=2, seed=3).fit(F)
    np.savez(tmp_path / "s.npz", **s.state_dict())
    with np.load(tmp_path / "s.npz") as z: s2 = MahalanobisScorer.from_state(dict(z))
    np.testing.assert_array_equal(s2.score(T), s.score(T))
    buf = io.BytesIO(); torch.save({k: torch.as_tensor(v) for k, v in s.state_dict().items()}, buf); buf.seek(0)
    s3 = MahalanobisScorer.from_state(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(s3.score(T), s.score(T))


def test_scorer_direction_and_evaluate():
    "Shifted (anomalous) samples get higher scores; AUROC is then high."
    rng = np.random.default_rng(1)
    A = rng.normal(size=(40, 5))
    normal_tr, normal_te = rng.normal(size=(200, 5)) @ A[:5], rng.normal(size=(50, 5)) @ A[:5]
    anomal = rng.normal(size=(50, 5)) @ A[:5] + 6 * rng.normal(size=5)
    s = MahalanobisScorer(normalize=False).fit(normal_tr)
    r = evaluate(np.r_[s.score(normal_te), s.score(anomal)], np.r_[np.zeros(50), np.ones(50)])
    assert r["auroc"] > 0.95
    tab = summarize_runs([dict(method="m", seed=i, **r) for i in range(3)])
    assert tab.loc["m", "auroc_ci95"] == 0


# --- the ablation switches, the training's guidance loss (relative=True), the kept epoch and the threshold, by value ---

def _tiny(method, n=160):
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import one_class_split
    from cmg_nb.scenes import make_scenes
    from cmg_nb.pipeline import CMG
    sp_ = one_class_split(make_scenes(n, size=32, seed=3), ["circle", "square", "triangle", "diamond"], seed=0)
    cfg = CMGConfig(image_size=16, backbone="convnet", epochs=2, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32, lr=2e-3)
    return sp_, CMG.for_method(method, cfg), cfg

@pytest.mark.parametrize("method,cmer,cmle", [("ssd", False, False), ("ssd+cmer", True, False), ("ssd+cmle", False, True), ("cmg", True, True)])
def test_ablation_switches_drop_cmer_and_cmle(monkeypatch, method, cmer, cmle):
    "Without CMER, E2 trains on the raw images and no RID exists; without CMLE, it gets no LLE weights."
    import cmg_nb.pipeline as P
    seen, real = {}, P.train_encoder
    def spy(x, cfg, W=None, **kw): seen.update(x=x.clone(), W=W); return real(x, cfg, W=W, **kw)
    monkeypatch.setattr(P, "train_encoder", spy)
    sp_, det, cfg = _tiny(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); det.fit(sp_.train, sp_.valid, progress=False)
    x = P.as_image_tensor(sp_.train, cfg.image_size)
    assert torch.equal(seen["x"], x) != cmer                                  # raw images exactly when CMER is off
    assert (det.rid_ is not None) == cmer and (det.matching_ is not None) == cmer
    assert (seen["W"] is not None) == cmle
    if cmle: assert seen["W"].shape == (len(x), len(x)) and np.allclose(np.asarray(seen["W"].sum(1)).ravel(), 1, atol=1e-6)
    xt = P.as_image_tensor(sp_.test, cfg.image_size)
    if not cmer: torch.testing.assert_close(det.rid_mask(xt), xt)               # no CMER: nothing is masked at test time either

def test_training_uses_the_relative_guidance_loss(monkeypatch):
    "The encoder's CMLE term is Eq. 13 (feature bank) divided by the batch's total variance: relative=True, recomputed here."
    from cmg_nb.ssd import train_encoder
    calls = []
    real = FeatureBank.loss
    def spy(self, W, idx, f, relative=False):
        out = real(self, W, idx, f, relative=relative)
        nb = self.feats.clone()                                               # bank after the update: the batch rows are f
        plain = ((f.detach() - torch.as_tensor(W[np.asarray(idx)].toarray(), dtype=f.dtype) @ nb) ** 2).sum(1)
        has = np.asarray(np.abs(W[np.asarray(idx)]).sum(1)).ravel() > 0
        calls.append((relative, out.item(), plain[torch.as_tensor(has)].mean().item() / f.detach().var(0, unbiased=False).sum().item()))
        return out
    monkeypatch.setattr(FeatureBank, "loss", spy)
    rng = np.random.default_rng(0)
    x = torch.rand(64, 3, 16, 16)
    Y = rng.normal(size=(64, 6)); W = lle_weights(Y, cluster_texts(Y, k=2), n_neighbors=5)
    from cmg_nb.core import CMGConfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = train_encoder(x, CMGConfig(image_size=16, backbone="convnet", epochs=1, batch_size=32, lam=1.0), W=W, progress=False)
    assert calls and all(r for r, _, _ in calls)
    np.testing.assert_allclose([c[1] for c in calls], [c[2] for c in calls], rtol=1e-5)
    np.testing.assert_allclose(enc.history.guidance_loss.iloc[0], np.mean([c[1] for c in calls]), rtol=1e-5)   # the recorded epoch mean

def test_kept_epoch_is_the_lowest_validation_loss():
    "KeepBest keeps the epoch with the lowest validation loss (not just some epoch): checked against the recorded history."
    from cmg_nb.core import CMGConfig
    from cmg_nb.ssd import train_encoder, extract_features
    g = torch.Generator().manual_seed(0)
    x, xv = torch.rand(64, 3, 16, 16, generator=g), torch.rand(32, 3, 16, 16, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = train_encoder(x, CMGConfig(image_size=16, backbone="convnet", epochs=4, batch_size=32), valid=xv, progress=False)
    assert enc.best_epoch == int(np.argmin(enc.history.valid_loss.to_numpy()))

def test_threshold_flags_target_fpr_of_validation():
    "The decision threshold flags (about) target_fpr of the normal validation images: counted, not recomputed by the same quantile."
    sp_, det, cfg = _tiny("ssd", n=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); det.fit(sp_.train, sp_.valid, progress=False)
    s = det.anomaly_score(sp_.valid)
    n, flagged = len(s), int((s > -det.offset_).sum())
    # the linear (1 - fpr) quantile of n distinct scores lies at position (1 - fpr)(n - 1): ceil(fpr (n - 1)) scores lie above it
    import math
    assert len(np.unique(s)) == n and flagged == math.ceil(round(det.config.target_fpr * (n - 1), 9)), (flagged, n)
