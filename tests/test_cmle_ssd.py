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
