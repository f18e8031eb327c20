"The experiment presets end to end on tiny fixtures of UCM-captions, Wikipedia and Class-COCO: Python and `cmg evaluate`."
import json, warnings
import numpy as np
import pytest
from conftest import FIXTURES
from test_cli import cmg
from cmg_nb.core import CMGConfig
from cmg_nb.experiments import PRESETS, preset_split, run_experiment, format_results

PRESET_DIRS = {"ucm": FIXTURES / "presets/ucm", "wikipedia": FIXTURES / "presets/wikipedia", "class-coco": FIXTURES / "presets/coco"}
TINY = dict(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=8)
TINY_FLAGS = ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--match-epochs", "1", "--rid-epochs", "1",
              "--text-encoder", "tfidf", "--batch-size", "8"]
SCHEMA = {"auroc_mean", "auroc_ci95", "aupr_mean", "aupr_ci95", "seeds"}

def check_schema(res, methods, seeds):
    "Keys, seeds, and every summary value recomputed from the per-seed values (mean; t-interval with scipy)."
    from scipy import stats
    assert list(res) == list(methods)
    for m, r in res.items():
        assert SCHEMA <= set(r), (m, sorted(r))
        assert r["seeds"] == list(seeds)
        for k in ("auroc", "aupr"):
            v = np.asarray(r[k], float); n = len(v)
            assert n == len(seeds) and r[f"{k}_mean"] == pytest.approx(v.mean(), abs=1e-12)
            if n > 1: assert r[f"{k}_ci95"] == pytest.approx(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n), rel=1e-9)
            else: assert r[f"{k}_ci95"] is None or np.isnan(r[f"{k}_ci95"])
        assert r["uses_labels"] == (m == "she")

def check_auroc_by_refit(split, method, seed, config, expected):
    "Fit the method again with the same seed and compute its test AUROC/AUPR with scikit-learn: the runner's values."
    from sklearn.metrics import roc_auc_score, average_precision_score
    from cmg_nb.evaluation import make_detector
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = make_detector(method, config, seed=seed).fit(split.train, split.valid, progress=False).anomaly_score(split.test)
    assert expected["auroc"][expected["seeds"].index(seed)] == pytest.approx(roc_auc_score(split.test_labels, s), abs=1e-9)
    assert expected["aupr"][expected["seeds"].index(seed)] == pytest.approx(average_precision_score(split.test_labels, s), abs=1e-9)

@pytest.mark.parametrize("preset", list(PRESET_DIRS))   # the paper's presets (openclipart: test_frozen, 14_experiments)
def test_preset_python(preset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = preset_split(PRESET_DIRS[preset], preset)
        out = run_experiment(split, ("ssd", "cmda", "she", "cmg"), seeds=(0,), config=CMGConfig(**TINY), progress=False)
    assert len(split.normal_groups) == {"ucm": 6, "wikipedia": 4, "class-coco": 6}[preset]
    assert not set(split.normal_groups) & set(split.anomaly_groups)
    check_schema(out["results"], ("ssd", "cmda", "she", "cmg"), [0])
    assert out["table"].loc["she †", "uses labels"] and not out["table"].loc["cmg", "uses labels"]
    assert np.isfinite(out["runs"].auroc).all()
    assert "† uses the normal groups' labels" in format_results(out["results"])
    check_auroc_by_refit(split, "ssd", 0, CMGConfig(**TINY), out["results"]["ssd"])

@pytest.mark.parametrize("preset", list(PRESET_DIRS))
def test_preset_cli(preset, tmp_path):
    out = tmp_path / "res" / "results.json"
    r = cmg("evaluate", "--preset", preset, "--data", PRESET_DIRS[preset], "--methods", "ssd,she", "--seeds", "2",
            "--json", out, "-q", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    check_schema(res, ("ssd", "she"), [0, 1])
    if preset == "ucm":                                             # the CLI's numbers are the library's, refitted here
        check_auroc_by_refit(preset_split(PRESET_DIRS[preset], preset), "ssd", 1, CMGConfig(**TINY), res["ssd"])
    assert "she †" in r.stdout and "AUROC (%)" in r.stdout
    assert not list(out.parent.glob("*.tmp*"))

def test_preset_cli_normal_override(tmp_path):
    r = cmg("evaluate", "--preset", "wikipedia", "--data", PRESET_DIRS["wikipedia"], "--normal-groups", "art,biology,geography,history,music",
            "--methods", "ssd", "--seeds", "1", "-q", *TINY_FLAGS)
    assert r.returncode == 0, r.stderr
    assert "normal=['art', 'biology', 'geography', 'history', 'music']" in r.stdout and "anomaly=['sport']" in r.stdout

@pytest.mark.parametrize("args,msg", [
    (["--preset", "ucm2", "--data", PRESET_DIRS["ucm"]], "unknown preset 'ucm2'; choose from ucm, wikipedia, class-coco, openclipart"),
    (["--preset", "ucm", "--data", PRESET_DIRS["ucm"], "--normal-groups", "farmland"], "unknown normal group(s) for preset 'ucm': 'farmland'"),
    (["--preset", "class-coco", "--data", PRESET_DIRS["class-coco"], "--normal-groups", "unicorn"], "unknown normal group(s) for preset 'class-coco': 'unicorn'"),
    (["--preset", "wikipedia", "--data", FIXTURES / "presets/nowhere"], "data folder not found"),
    (["--data", PRESET_DIRS["ucm"], "--format", "ucm"], "--normal-groups is required unless --preset is given"),
])
def test_preset_errors_are_one_line(args, msg, capsys):
    "Bad input fails before any training, with one line on stderr (in-process `main`, as the `cmg` entry point runs it)."
    from cmg_nb.cli import main
    assert main(["evaluate", *map(str, args), "--methods", "ssd", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmg: error:") and msg in lines[0], err
    assert "Traceback" not in err

def test_preset_errors_python():
    with pytest.raises(ValueError, match="unknown preset 'coco'"): preset_split(PRESET_DIRS["class-coco"], "coco")
    with pytest.raises(ValueError, match="unknown normal group"): preset_split(PRESET_DIRS["ucm"], "ucm", normal=["farmland"])
    with pytest.raises(ValueError, match="no items in this data"): preset_split(PRESET_DIRS["ucm"], "ucm", normal=["river"])
    with pytest.raises(ValueError, match="no group has more than 6000"): preset_split(PRESET_DIRS["class-coco"], "class-coco", min_normal=6000)
