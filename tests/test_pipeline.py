"The CMG detector and the `cmg` command end to end, on a tiny folder data set and tiny settings."
import json, re, subprocess, sys, shutil
import scipy.stats
from pathlib import Path
import numpy as np
import pytest
import torch
from cmg_nb.data import one_class_split
from cmg_nb.loaders import load_folder
from cmg_nb.pipeline import CMG
from cmg_nb.rid import PooledPixels

TINY = dict(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32)
FLAGS = ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--match-epochs", "1", "--rid-epochs", "1",
         "--text-encoder", "tfidf", "--batch-size", "32", "-q"]

from conftest import run_cmg as cmg

def metrics_from_scores(csv_path)->dict:
    "Reference for the CLI's results: AUROC and AUPR per method and seed recomputed with scikit-learn from the saved scores, then mean and 95% t-interval over seeds."
    import pandas as pd, scipy.stats
    from sklearn.metrics import roc_auc_score, average_precision_score
    df, out = pd.read_csv(csv_path), {}
    for m, g in df.groupby("method", sort=False):
        per = [(roc_auc_score(s.is_anomaly, s.anomaly_score), average_precision_score(s.is_anomaly, s.anomaly_score))
               for _, s in g.groupby("seed")]
        a, p = np.array(per).T
        ci = scipy.stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else None
        out[m] = dict(auroc_mean=a.mean(), aupr_mean=p.mean(), auroc_ci95=ci, seeds=sorted(g.seed.unique().tolist()))
    return out

def check_against_scores(res:dict, csv_path):
    "Every method's AUROC/AUPR mean (and CI) in the CLI's JSON equals the recomputation from its saved scores."
    ref = metrics_from_scores(csv_path)
    assert list(ref) == list(res), (list(ref), list(res))
    for m, r in ref.items():
        assert res[m]["seeds"] == r["seeds"], m
        assert res[m]["auroc_mean"] == pytest.approx(r["auroc_mean"], abs=1e-6), m
        assert res[m]["aupr_mean"] == pytest.approx(r["aupr_mean"], abs=1e-6), m
        if r["auroc_ci95"] is not None: assert res[m]["auroc_ci95"] == pytest.approx(r["auroc_ci95"], abs=1e-6), m

@pytest.fixture(scope="module")
def folder(tmp_path_factory, scene_folder): return scene_folder(tmp_path_factory.mktemp("scenes"), 160)

@pytest.fixture(scope="module")
def split(folder): return one_class_split(load_folder(folder), ["circle", "square"], seed=0)

@pytest.mark.parametrize("rid_input", ["pixels", "matching"])
def test_save_load_same_scores_and_seed_reproducible(split, tmp_path, rid_input):
    a = CMG(**TINY, seed=3, rid_input=rid_input).fit(split.train, split.valid, progress=False)
    assert isinstance(a.rid_.features, PooledPixels) == (rid_input == "pixels")
    s = a.anomaly_score(split.test)
    p = a.save(tmp_path / "m.cmg")
    assert not list(tmp_path.glob("*.tmp*"))
    torch.load(p, weights_only=True)                                  # loadable without unpickling code
    b = CMG.load(p)
    np.testing.assert_array_equal(b.anomaly_score(split.test), s)     # save -> load -> identical scores
    np.testing.assert_array_equal(b.predict(split.test), a.predict(split.test))
    c = CMG(**TINY, seed=3, rid_input=rid_input).fit(split.train, split.valid, progress=False)
    np.testing.assert_allclose(c.anomaly_score(split.test), s, rtol=1e-5)   # same seed -> same scores
    np.testing.assert_array_equal(a.score_samples(split.test), -s)    # sklearn direction: higher = more normal
    if rid_input == "matching":                                       # a file from before `rid_input` existed still loads
        st = torch.load(p, weights_only=True)
        cfg = json.loads(st["config"]); del cfg["rid_input"]; st["config"] = json.dumps(cfg); st.pop("settings_sha", None)   # older than both
        torch.save(st, tmp_path / "old.cmg")
        np.testing.assert_array_equal(CMG.load(tmp_path / "old.cmg").anomaly_score(split.test), s)

def test_fit_logs_each_stage_when_redirected(split, capsys):
    "Output to a file (not a terminal): the from-scratch CMG says when each stage starts and ends (issue 24: silent stages)."
    CMG(**TINY, seed=0).fit(split.train, split.valid, progress=True)
    out = capsys.readouterr().out
    for stage in ("text embeddings", "CMER (matching model, masks, RID)", "CMLE (text clusters, LLE weights)", "anomaly encoder E2", "Mahalanobis scorer"):
        assert re.search(rf"^\[cmg\] {re.escape(stage)}: \d+ images \.\.\.$", out, re.M), (stage, out)
        assert re.search(rf"^\[cmg\] {re.escape(stage)}: done in \d+\.\ds$", out, re.M), (stage, out)

def test_checkpoint_resume(split, tmp_path, monkeypatch):
    import cmg_nb.pipeline as P
    ref = CMG(**TINY, seed=1).fit(split.train, split.valid, progress=False).anomaly_score(split.test)
    real = P.train_encoder
    def boom(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(P, "train_encoder", boom)
    with pytest.raises(KeyboardInterrupt): CMG(**TINY, seed=1).fit(split.train, split.valid, checkpoint=tmp_path / "ck", progress=False)
    assert (tmp_path / "ck/cmer.pt").is_file() and not (tmp_path / "ck/encoder.pt").exists()
    monkeypatch.setattr(P, "train_encoder", real)
    def no_retrain(*a, **k): raise AssertionError("CMER stage recomputed instead of resumed")
    monkeypatch.setattr(P, "train_matching_model", no_retrain)
    s = CMG(**TINY, seed=1).fit(split.train, split.valid, checkpoint=tmp_path / "ck", progress=False).anomaly_score(split.test)
    np.testing.assert_allclose(s, ref, rtol=1e-5)
    with pytest.raises(ValueError, match="other settings or data"):
        CMG(**TINY, seed=2).fit(split.train, split.valid, checkpoint=tmp_path / "ck", progress=False)

@pytest.fixture(scope="module")
def model(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m.cmg"
    r = cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", out, "--method", "cmg", *FLAGS)
    assert r.returncode == 0, r.stderr
    return out

def test_cli_fit_score_evaluate(folder, model, tmp_path):
    ims = sorted((folder / "img").glob("*.png"))[:3]
    r = cmg("score", "--model", model, *ims)
    assert r.returncode == 0, r.stderr
    head, *lines = r.stdout.strip().splitlines()                        # CSV with a header; status goes to stderr
    assert head == "path,anomaly_score,verdict" and len(lines) == 3 and all(l.split(",")[2] in ("normal", "anomaly") for l in lines)
    js = json.loads(cmg("score", "--model", model, "--json", *ims).stdout)
    np.testing.assert_allclose([x["anomaly_score"] for x in js["results"]], [float(l.split(",")[1]) for l in lines], rtol=1e-5)
    assert [x["path"] for x in js["results"]] == [l.split(",")[0] for l in lines] == list(map(str, ims))
    r = cmg("evaluate", "--data", folder, "--normal-groups", "circle,square", "--methods", "ssd,cmg", "--seeds", "2",
            "--json", tmp_path / "res.json", "--scores-out", tmp_path / "scores.csv", *FLAGS)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert set(res) == {"ssd", "cmg"} and res["cmg"]["seeds"] == [0, 1]
    check_against_scores(res, tmp_path / "scores.csv")          # AUROC, AUPR and the interval recomputed with sklearn/scipy

@pytest.mark.parametrize("case", ["unknown_group", "missing_folder", "bad_model", "bad_image", "model_is_dir"])
def test_cli_bad_input(folder, model, tmp_path, case):
    (tmp_path / "junk.cmg").write_bytes(b"not a model")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    args, msg = {
        "unknown_group": (["fit", "--data", folder, "--normal-groups", "circle,hexagon", "--out", tmp_path / "o.cmg", "--method", "cmg", *FLAGS], "unknown normal group(s): 'hexagon'"),
        "missing_folder": (["evaluate", "--data", tmp_path / "nope", "--normal-groups", "a", *FLAGS], "data folder not found"),
        "bad_model": (["score", "--model", tmp_path / "junk.cmg", folder / "img/0.png"], "not a readable cmg_nb model file"),
        "bad_image": (["score", "--model", model, folder / "img/0.png", tmp_path / "bad.png"], "cannot decode image"),
        "model_is_dir": (["fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path, "--method", "cmg", *FLAGS], "is a folder"),
    }[case]
    r = cmg(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("cmg: error:") and msg in lines[0], r.stderr
    assert not (tmp_path / "o.cmg").exists()

def test_cli_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    r = cmg("demo", "--out", out, "--n-images", "240", "--seeds", "2", "--methods", "ssd,ssd+cmer,ssd+cmle,cmg", *FLAGS)
    assert r.returncode == 0, r.stderr
    for f in ("report.html", "results.json", "roc.png", "score_hist.png", "rid_masked_examples.png", "tsne.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 200, f
    res = json.loads((out / "results.json").read_text())
    assert list(res) == ["ssd", "ssd+cmer", "ssd+cmle", "cmg"] and all(r["seeds"] == [0, 1] for r in res.values())
    assert "cmg - ssd AUROC" in r.stdout and "done in" in r.stdout
    d = 100 * np.subtract(res["cmg"]["auroc"], res["ssd"]["auroc"])          # the margin line, recomputed with scipy
    half = scipy.stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    m = re.search(r"cmg - ssd AUROC: ([+-][\d.]+) points .*paired 95% CI ±([\d.]+)\)", r.stdout)
    assert m and abs(float(m[1]) - d.mean()) < 0.051 and abs(float(m[2]) - half) < 0.051, (r.stdout[-400:], d, half)
    assert "paired 95% CI" in (out / "report.html").read_text()
    assert not list(out.glob("*.tmp*"))
