"""The analysis page's saved full-size results (`nbs/analysis_results/`): every file its slow cells write
exists, covers at least three seeds, and holds values in range. Regenerate them with
`nbdev_test --path nbs/15_analysis.ipynb --flags slow`."""
from __future__ import annotations
import json, re
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT/"nbs"/"15_analysis.ipynb"
RESULTS = ROOT/"nbs"/"analysis_results"

def written_files()->list[str]:
    "CSV names the notebook's cells write with `.to_csv(RESULTS/...)`."
    src = "\n".join("".join(c["source"]) for c in json.loads(NB.read_text())["cells"] if c["cell_type"] == "code")
    return sorted(set(re.findall(r'to_csv\(RESULTS\s*/\s*"([\w.-]+\.csv)"', src)))

def test_notebook_writes_every_figure():
    assert set(written_files()) >= {"fig1_modality.csv", "entropy.csv", "fig6_tsne.csv", "fig6_silhouette.csv",
                                    "fig7_guidance.csv", "fig8_rid_curve.csv", "fig9_mask_modes.csv"}, written_files()

@pytest.mark.parametrize("name", written_files())
def test_saved_result(name):
    f = RESULTS/name
    assert f.is_file(), f"{f} is missing: run nbdev_test --path nbs/15_analysis.ipynb --flags slow"
    df = pd.read_csv(f)
    assert len(df), f"{name} is empty"
    if "seed" in df: assert df.seed.nunique() >= 3, f"{name}: only seeds {sorted(df.seed.unique())}"
    for col in ("auroc", "aupr", "accuracy", "linear_accuracy", "v_measure", "rid_valid_accuracy"):
        if col in df: assert df[col].between(0, 1).all(), f"{name}: {col} outside [0, 1]"
    if "silhouette" in df: assert df.silhouette.between(-1, 1).all()
    if name == "fig6_tsne.csv": assert {"method", "x", "y", "group", "normal"} <= set(df.columns) and df.method.nunique() >= 2
    if name == "entropy.csv":
        raw = df[df.variant == "raw"]
        assert len(raw) >= 3 and (raw["drop"] == 0).all()
        for seed, g in df.groupby("seed"):   # drop = H(raw) - H(variant), seed by seed
            h0 = g[g.variant == "raw"].entropy.iloc[0]
            assert ((h0 - g.entropy - g["drop"]).abs() < 1e-9).all()

@pytest.mark.parametrize("rid_input", ["pixels", "matching"])
def test_rid_curves_follow_rid_input(monkeypatch, rid_input):
    "Fig. 8 trains the RID on the input that `CMGConfig.rid_input` names (it once always used the matching model)."
    import numpy as np
    import cmg_nb.analysis as A
    from cmg_nb.core import CMGConfig
    seen = []
    stage = dict(x=None, labels=None, xv=None, valid_labels=np.array([0, 1, 1]), matching="E1")
    monkeypatch.setattr(A, "_stage", lambda stages, seed, train, valid, cfg: stage)
    def fake_train_rid(*a, features=None, extra_cbs=(), **k):
        seen.append(features)
        for cb in extra_cbs: cb.rows = []                          # what the recorder holds before its first epoch
    monkeypatch.setattr(A, "train_rid", fake_train_rid)
    A.rid_learning_curves(None, None, CMGConfig(rid_input=rid_input), seeds=(0, 1))
    assert seen == (["pixels"] * 2 if rid_input == "pixels" else ["E1"] * 2)

def test_fig9_rid_arms_are_the_documented_arms():
    "Fig. 9's arms: the three default arms x seeds 0-2, each with the RID budget and mask that its name says."
    from cmg_nb.evaluation import DEMO_CONFIG
    df = pd.read_csv(RESULTS/"fig9_rid_arms.csv")
    assert list(dict.fromkeys(df.arm)) == ["hard, RID 1 epoch", "hard, RID full", "soft, RID full"]
    for arm, g in df.groupby("arm"):
        assert sorted(g.seed) == [0, 1, 2]
        assert (g.rid_epochs == (1 if "1 epoch" in arm else DEMO_CONFIG["rid_epochs"])).all()
        assert (g.mask_mode == arm.split(",")[0]).all() and (g.chance == 0.25).all()

def test_fig5_saved_matrices():
    "Fig. 5's saved matrices: the eight sets, symmetric, unit diagonal; the RID's baselines match its settings."
    import numpy as np
    f = json.loads((RESULTS/"fig5_dcor.json").read_text())
    assert f["names"] == ["raw", "CMER mask", "RID mask", "random mask", "object only", "captions", "white noise", "uniform noise"]
    for k in ("plain", "bias_corrected"):
        a = np.asarray(f[k]); assert a.shape == (8, 8) and np.allclose(a, a.T) and np.allclose(np.diag(a), 1)
    assert f["chance"] == 1 / f["settings"]["n_regions"] and f["settings"]["n_train"] == 2000 and f["n"] == 200

def test_summary_table_matches_saved_results():
    "Every figure in the page's summary table is recomputed from the saved CSVs (mean over seeds; ± the 95% t-interval of `summarize_runs`)."
    from cmg_nb.scoring import summarize_runs
    cell = next("".join(c["source"]) for c in json.loads(NB.read_text())["cells"] if "What the saved run shows" in "".join(c["source"]))
    row = lambda name: next(l for l in cell.splitlines() if l.startswith(f"| {name}"))
    csv = lambda n: pd.read_csv(RESULTS/n)
    pm = lambda df, metric, by, key, d=3: "{:.{d}f} ± {:.{d}f}".format(*summarize_runs(df, metrics=(metric,), by=by).loc[key, [f"{metric}_mean", f"{metric}_ci95"]], d=d)
    f1 = csv("fig1_modality.csv").query("dataset == 'shape'").groupby("modality").linear_accuracy.mean()
    assert f"text {f1['text: minilm']:.2f}, pixels {f1['image: pixels']:.2f}, SSD features {f1['image: SSD encoder']:.2f}" in row("Fig. 1")
    e = csv("entropy.csv")
    assert f"CMER masks {pm(e, 'drop', 'variant', 'CMER mask', 2)} nats, random masks {pm(e, 'drop', 'variant', 'random mask', 2)} nats" in row("Eq. 4")
    f8 = csv("fig8_rid_curve.csv"); acc = f8.groupby("epoch").accuracy.mean()
    assert f"{acc.iloc[0]:.2f} after epoch 1, {acc.iloc[1:].min():.2f}–{acc.iloc[1:].max():.2f} later" in row("Fig. 8")
    assert f"chance {f8.chance.iloc[0]:.2f}, most frequent region {f8.groupby('seed').majority.first().mean():.2f}" in row("Fig. 8")
    f9 = csv("fig9_mask_modes.csv")
    assert f"hard {pm(f9, 'auroc', 'mask_mode', 'hard')}, soft {pm(f9, 'auroc', 'mask_mode', 'soft')}" in row("Fig. 9")
    s = csv("fig6_silhouette.csv").groupby("method").silhouette.mean()
    assert f"SSD {s['ssd']:.3f}, CMG {s['cmg']:.3f}".replace("-", "−") in row("Fig. 6")
    f7 = csv("fig7_guidance.csv")
    assert ", ".join(f"{k} {pm(f7, 'auroc', 'guidance', g)}" for k, g in [("SSD", "SSD (none)"), ("MSE", "MSE"), ("CMLE", "CMLE")]) in row("Fig. 7")

def _frozen_measured_cell()->str:
    "The prose of the frozen arms' result, its line breaks made spaces."
    return " ".join(next("".join(c["source"]) for c in json.loads(NB.read_text())["cells"]
                         if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("**Measured** (saved run of `FROZEN_RID_ARMS`")).split())

def test_fig9_frozen_rid_arms_file_and_prose():
    "Fig. 9 with the frozen RID: the arms and seeds the page fixes, and every figure of its prose recomputed from the CSV (pandas and scipy)."
    import numpy as np
    from scipy import stats
    from cmg_nb.analysis import FROZEN_RID_ARMS
    df = pd.read_csv(RESULTS/"fig9_frozen_rid_arms.csv")
    assert list(dict.fromkeys(df.arm)) == list(FROZEN_RID_ARMS) and (df.method == "cmg-frozen").all()
    for arm, g in df.groupby("arm"):
        assert sorted(g.seed) == [0, 1, 2] and (g.rid_epochs == FROZEN_RID_ARMS[arm]["rid_epochs"]).all()
    assert (df.n_candidates == 18).all() and np.allclose(df.chance, 1 / df.n_candidates)
    for seed, g in df.groupby("seed"): assert g.cmer_majority.nunique() == 1       # the arms of a seed share CMER's labels
    cell = _frozen_measured_cell()
    ci = lambda v: stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))
    acc = {}
    for arm in FROZEN_RID_ARMS:
        a, r = df[df.arm == arm].auroc.to_numpy(), df[df.arm == arm].rid_valid_accuracy.to_numpy()
        acc[arm] = r.mean()
        assert f"{arm}: AUROC {a.mean():.3f} ± {ci(a):.3f}, RID accuracy {r.mean():.3f} ± {ci(r):.3f}" in cell, arm
    rho = stats.spearmanr(df.rid_valid_accuracy, df.auroc).statistic
    assert f"Spearman ρ = {rho:.2f}".replace("-", "−") in cell
    assert f"mean RID accuracies span {max(acc.values()) - min(acc.values()):.3f}" in cell
    au = df.groupby("arm").auroc.mean()
    rose = rho > 0 and sorted(acc, key=acc.get) == sorted(acc, key=au.get)     # the page's rule, written above the result
    tested = max(acc.values()) - min(acc.values()) > 1 / 65 + 1e-12
    assert ("AUROC rose with RID accuracy" if rose else "AUROC did not rise with RID accuracy") in cell
    assert ("the claim is tested" if tested else "the claim is not tested") in cell
