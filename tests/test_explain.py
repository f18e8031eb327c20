"Heatmaps (`cmg score --heatmap`, `CMG.explain`) and the new methods through the `cmg` command, on a folder data set."
import json, subprocess, sys, shutil, csv
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from test_pipeline import check_against_scores   # AUROC/AUPR recomputed from the saved scores

TINY = ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--match-epochs", "1", "--rid-epochs", "1",
        "--text-encoder", "tfidf", "--batch-size", "32"]

def cmg(*args, cwd=None):
    exe = shutil.which("cmg") or str(Path(sys.executable).parent / "cmg")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)

def one_line_error(r, msg):
    lines = r.stderr.strip().splitlines()
    return r.returncode == 2 and len(lines) == 1 and lines[0].startswith("cmg: error:") and msg in lines[0] and "Traceback" not in r.stderr

@pytest.fixture(scope="module")
def scenes_folder(tmp_path_factory):
    "The embedded scenes written as a folder data set (captions.csv + PNGs), 4 groups."
    from cmg_nb.scenes import make_scenes
    root = tmp_path_factory.mktemp("scenes")
    d = make_scenes(96, size=32, seed=11, shapes=("circle", "square", "star", "cross"))
    (root / "imgs").mkdir()
    with open(root / "captions.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["image", "caption", "group"])
        for i in range(len(d)):
            Image.fromarray(d.image(i)).save(root / "imgs" / f"s{i:03d}.png")
            for c in d.captions[i][:2]: w.writerow([f"imgs/s{i:03d}.png", c, d.groups[i]])
    return root, d

@pytest.fixture(scope="module")
def model_file(scenes_folder, tmp_path_factory):
    root, _ = scenes_folder
    out = tmp_path_factory.mktemp("model") / "m.cmg"
    r = cmg("fit", "--data", root, "--normal-groups", "circle,square", "--out", out, "--method", "cmg", "-q", *TINY)
    assert r.returncode == 0, r.stderr
    return out

def test_score_heatmap_writes_pngs(scenes_folder, model_file, tmp_path):
    root, d = scenes_folder
    ims = [root / "imgs" / "s000.png", root / "imgs" / "s001.png", root / "imgs" / "s002.png"]
    r = cmg("score", "--model", model_file, "--heatmap", tmp_path / "hm", "--grid", "2", "--json", *ims)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["results"]                      # --json output stays pure JSON
    assert [Path(x["heatmap"]).name for x in res] == ["s000.png", "s001.png", "s002.png"]
    for x in res:
        p = Path(x["heatmap"]); assert p.is_file() and p.stat().st_size > 1000
        assert Image.open(p).size[0] > 100
    assert not list((tmp_path / "hm").glob("*.tmp*"))
    # the numbers in the PNGs are CMG.explain's: |score - score with the region masked|, recomputed here by hand
    from cmg_nb.pipeline import CMG, as_image_tensor
    from cmg_nb.data import read_image
    import cmg_nb.explain                                      # adds CMG.explain
    det = CMG.load(model_file)
    c = det.explain(read_image(ims[0]), grid=2, absolute=True)
    x = as_image_tensor([ims[0]], det.config.image_size); h = x.shape[-1] // 2
    base = det.anomaly_score(x)[0]
    for r in range(2):
        for k in range(2):
            xm = x.clone(); xm[..., r * h:(r + 1) * h, k * h:(k + 1) * h] = 0      # the config's hard mask
            assert abs(c[r, k] - abs(base - det.anomaly_score(xm)[0])) < 1e-4, (r, k, c)

def test_score_heatmap_same_stems(scenes_folder, model_file, tmp_path):
    root, _ = scenes_folder
    other = tmp_path / "other"; other.mkdir(); shutil.copy(root / "imgs" / "s005.png", other / "s000.png")
    r = cmg("score", "--model", model_file, "--heatmap", tmp_path / "hm", root / "imgs" / "s000.png", other / "s000.png")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "hm").iterdir()) == ["s000.npy", "s000.png", "s000_2.npy", "s000_2.png"]
    assert "wrote 2 heatmap(s)" in r.stderr and "heatmap" in r.stdout.splitlines()[0]   # status on stderr, data on stdout

@pytest.mark.parametrize("extra,msg", [
    (["--grid", "0"], "--grid must be >= 1"),
    (["--grid", "40"], "grid does not fit"),
])
def test_score_heatmap_bad_grid(scenes_folder, model_file, tmp_path, extra, msg):
    root, _ = scenes_folder
    r = cmg("score", "--model", model_file, "--heatmap", tmp_path / "hm", *extra, root / "imgs" / "s000.png")
    assert one_line_error(r, msg), r.stderr
    assert not list((tmp_path / "hm").glob("*.png")) if (tmp_path / "hm").exists() else True

def test_score_heatmap_bad_image(scenes_folder, model_file, tmp_path):
    root, _ = scenes_folder
    bad = tmp_path / "bad.png"; bad.write_bytes(b"not a png")
    r = cmg("score", "--model", model_file, "--heatmap", tmp_path / "hm", root / "imgs" / "s000.png", bad)
    assert one_line_error(r, "bad.png"), r.stderr
    assert not (tmp_path / "hm").exists()                      # nothing written before the input is checked

def test_score_heatmap_dir_is_file(scenes_folder, model_file, tmp_path):
    root, _ = scenes_folder
    f = tmp_path / "f.txt"; f.write_text("x")
    r = cmg("score", "--model", model_file, "--heatmap", f, root / "imgs" / "s000.png")
    assert one_line_error(r, "is a file"), r.stderr

def test_evaluate_new_methods_on_folder(scenes_folder, tmp_path):
    root, _ = scenes_folder
    methods = "ssd,cmg,pretrained-maha,cmg-pretrained,zero-shot,zero-shot-fused"
    r = cmg("evaluate", "--data", root, "--normal-groups", "circle,square", "--methods", methods, "--seeds", "1",
            "--json", tmp_path / "r.json", "--scores-out", tmp_path / "scores.csv", "-q", *TINY)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert list(res) == methods.split(",")
    assert all(v["seeds"] == [0] for v in res.values())
    check_against_scores(res, tmp_path / "scores.csv")          # AUROC and AUPR recomputed with sklearn from the saved scores

def test_demo_bad_method_is_one_line(tmp_path):
    r = cmg("demo", "--methods", "ssd,nope", "--out", tmp_path / "d")
    assert one_line_error(r, "unknown method(s) nope"), r.stderr
    assert not (tmp_path / "d").exists()

def test_demo_new_methods_on_embedded_scenes(tmp_path):
    r = cmg("demo", "--methods", "ssd,pretrained-maha,zero-shot", "--n-images", "160", "--seeds", "1", "--out", tmp_path / "d", "-q",
            *[a for a in TINY if a not in ("--backbone", "convnet")])
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "d/results.json").read_text())
    assert list(res) == ["ssd", "pretrained-maha", "zero-shot"]
    assert "pretrained-maha" in (tmp_path / "d/report.html").read_text()
    settings = json.loads((tmp_path / "d/summary.json").read_text())["settings"]   # each method's own, not the from-scratch config
    assert (settings["ssd"]["backbone"], settings["pretrained-maha"]["backbone"]) == ("convnet", "mobilenet_v2_imagenet")
    assert (settings["ssd"]["image_size"], settings["pretrained-maha"]["image_size"]) == (int(TINY[TINY.index("--image-size") + 1]), 96)
    page = (tmp_path / "d/report.html").read_text().split("Settings of each method")[1]
    assert "differing:" in page and "mobilenet_v2_imagenet" in page and "convnet" in page
