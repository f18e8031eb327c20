"""Bad input and faults, as a demanding user meets them (issue 17): each case once, generated here, run in-process.

Every case asserts the behaviour that was missing before: one `cmg: error:` line instead of a traceback, no silent
wrong answer, and no lost work. The corpus is built in temporary folders (nothing is checked in)."""
import io, json, os, struct, zlib, contextlib, shutil
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from cmg_nb.cli import main
from cmg_nb.data import read_image
from cmg_nb.scenes import make_scenes
from cmg_nb.loaders import load_folder
from cmg_nb.pipeline import CMG, cmg_stages
from cmg_nb.inputs import as_image_tensor

TINY = ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--match-epochs", "1", "--rid-epochs", "1",
        "--text-encoder", "tfidf", "--batch-size", "32", "-q"]
TINY_CFG = dict(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32)

def cmg(*args):
    "Run `cmg` in this process: (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code
    return rc, out.getvalue(), err.getvalue()

def one_line_error(res, msg):
    rc, _, err = res
    lines = [l for l in err.strip().splitlines() if l.strip() and not l.startswith("cmg: warning:")]   # warnings may precede the error
    return rc == 2 and len(lines) == 1 and lines[0].startswith("cmg: error:") and msg in lines[0]

def bomb_png(path, side=20_000):
    "A valid 1x1 PNG whose header claims side x side pixels (correct checksum): PIL's bomb guard refuses it."
    b = io.BytesIO(); Image.new("L", (1, 1)).save(b, "PNG"); raw = bytearray(b.getvalue())
    ihdr = raw[12:29]; ihdr[4:12] = struct.pack(">II", side, side)
    raw[12:29] = ihdr; raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    Path(path).write_bytes(bytes(raw))

@pytest.fixture(scope="module")
def folder(tmp_path_factory, scene_folder): return scene_folder(tmp_path_factory.mktemp("scenes"), 120)

def fit_cli_model(folder, tmp_path_factory, method:str):
    "`cmg fit --method METHOD` at the tiny settings on the circle/square groups of `folder`; the model file's path."
    out = tmp_path_factory.mktemp("model") / "m.cmg"
    res = cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", out, "--method", method, *TINY)
    assert res[0] == 0, res
    return out

@pytest.fixture(scope="module")
def model(folder, tmp_path_factory): return fit_cli_model(folder, tmp_path_factory, "cmg")

# 1. stale checkpoints ---------------------------------------------------------------------------------------------------
def _edited(folder, tmp_path, kind):
    d = tmp_path / kind; shutil.copytree(folder, d)
    f = d / "captions.csv"; lines = f.read_text().splitlines()
    if kind == "captions":                                 # every second caption row gets another caption
        lines = [l if i % 2 or i == 0 else l.replace('",', ' indeed",') for i, l in enumerate(lines)]
    elif kind == "groups": lines = [lines[0]] + [l.replace(",square", ",box") for l in lines[1:]]
    f.write_text("\n".join(lines) + "\n")
    if kind == "pixel":
        p = d / "img/3.png"; a = np.asarray(Image.open(p)).copy(); a[-1, -1, 0] ^= 1; Image.fromarray(a).save(p)
    return d

@pytest.mark.parametrize("kind", ["captions", "groups", "pixel"])
def test_each_edit_changes_the_stage_key(folder, tmp_path, kind):
    cfg = CMG(**TINY_CFG).config
    def key(root):
        d = load_folder(root); tr, va = d.subset(range(0, 100)), d.subset(range(100, 120))
        x, xv = as_image_tensor(tr, 16), as_image_tensor(va, 16)
        return cmg_stages(cfg, x, xv, tr, va).data_key
    assert key(_edited(folder, tmp_path, kind)) != key(folder)

def test_stale_checkpoint_is_refused_not_reused(folder, tmp_path):
    ck = tmp_path / "ck"
    assert cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", tmp_path / "a.cmg", "--method", "cmg",
               "--checkpoint", ck, *TINY)[0] == 0
    res = cmg("fit", "--data", _edited(folder, tmp_path, "captions"), "--normal-groups", "circle,square", "--out", tmp_path / "b.cmg",
              "--method", "cmg", "--checkpoint", ck, *TINY)
    assert one_line_error(res, "was made with other settings or data"), res
    assert not (tmp_path / "b.cmg").exists()

def test_corrupt_stage_file_and_checkpoint_file(folder, tmp_path):
    ck = tmp_path / "ck"
    assert cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "a.cmg", "--method", "ssd", "--checkpoint", ck, *TINY)[0] == 0
    (ck / "encoder.pt").write_bytes(b"half a file")
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "b.cmg", "--method", "ssd", "--checkpoint", ck, *TINY)
    assert one_line_error(res, "encoder.pt cannot be read"), res
    (tmp_path / "f").write_text("x")
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "c.cmg", "--method", "ssd", "--checkpoint", tmp_path / "f", *TINY)
    assert one_line_error(res, "is a file; give a folder"), res

# 2. outputs checked before the work -------------------------------------------------------------------------------------
def test_fit_out_below_a_file_fails_before_training(folder, tmp_path):
    (tmp_path / "f").write_text("x")
    res = cmg("fit", "--data", tmp_path / "no-data", "--normal-groups", "circle", "--out", tmp_path / "f" / "m.cmg", "--method", "ssd", *TINY)
    assert one_line_error(res, "is a file, not a folder"), res      # the output is checked before the (missing) data

@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_fit_out_read_only_folder(tmp_path):
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    res = cmg("fit", "--data", tmp_path / "no-data", "--normal-groups", "circle", "--out", ro / "m.cmg", "--method", "ssd", *TINY)
    assert one_line_error(res, "cannot write --out"), res

def test_full_disk_at_save_keeps_the_fitted_model(folder, tmp_path, monkeypatch):
    "On a full disk torch.save raises a RuntimeError of its zip writer, not an OSError (the real tmpfs case: test_reliability.py)."
    real = torch.save
    def save(obj, f, *a, **k):
        if Path(f).parent == tmp_path: raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
        return real(obj, f, *a, **k)
    monkeypatch.setattr(torch, "save", save)
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", "ssd", *TINY)
    assert one_line_error(res, "the fitted model was saved to"), res
    rescued = Path(res[2].split("saved to ")[1].strip())
    assert CMG.load(rescued).is_fitted
    rescued.unlink()
    assert not list(tmp_path.glob("m.cmg*"))                             # no half-written model, no temporary

def test_evaluate_json_checked_before_training(folder, tmp_path):
    (tmp_path / "f").write_text("x")
    res = cmg("evaluate", "--data", folder, "--normal-groups", "circle", "--methods", "ssd", "--seeds", "1", "--json", tmp_path / "f" / "r.json", *TINY)
    assert one_line_error(res, "is a file, not a folder") and "OneClassSplit" not in res[1], res

# 3. pixel values by dtype -------------------------------------------------------------------------------------------------
def test_uint8_tensors_are_scaled_and_255_floats_refused(model, folder):
    det = CMG.load(model)
    u8 = load_folder(folder).to_array(16)[:4]
    t8 = torch.from_numpy(u8).permute(0, 3, 1, 2)
    np.testing.assert_allclose(det.score_samples(t8), det.score_samples(t8.float() / 255), rtol=1e-6)
    with pytest.raises(ValueError, match="divide by 255"): det.score_samples(t8.float())
    bad = t8.float() / 255; bad[2, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="image 2 has NaN"): det.score_samples(bad)

def test_predict_takes_a_path_a_folder_and_pil(model, folder):
    det = CMG.load(model)
    p = folder / "img/0.png"
    ref = det.anomaly_score([read_image(p)])
    np.testing.assert_allclose(det.anomaly_score(str(p)), ref, rtol=1e-6)
    np.testing.assert_allclose(det.anomaly_score(Image.open(p)), ref, rtol=1e-6)
    assert det.predict(str(p)).shape == (1,)
    assert len(det.anomaly_score(folder / "img")) == 120

# 4. decoding --------------------------------------------------------------------------------------------------------------
def test_16bit_png_and_float_tiff_score_like_8bit(model, tmp_path):
    det = CMG.load(model)
    g8 = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g8.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray((g8 / 255).astype(np.float32)).save(tmp_path / "f.tif")
    s = det.anomaly_score([tmp_path / "g8.png", tmp_path / "g16.png", tmp_path / "f.tif"])
    np.testing.assert_allclose(s[1:], [s[0], s[0]], rtol=1e-5)

def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((8, 4, 3), np.uint8); a[0] = 255
    exif = Image.Exif(); exif[0x0112] = 8                      # orientation 8: rotate 90 degrees counter-clockwise to view
    Image.fromarray(np.rot90(a, -1).copy()).save(tmp_path / "r.jpg", exif=exif, quality=100)
    r = read_image(tmp_path / "r.jpg")
    assert r.shape == (8, 4, 3) and r[0].min() > 200 and r[1:].max() < 60

def _folder_with(tmp_path, folder, name, writer):
    d = tmp_path / "data"; shutil.copytree(folder, d); writer(d / "img" / name)
    with open(d / "captions.csv", "a") as f: f.write(f'img/{name},"a circle",circle\n')
    return d

def test_bomb_header_in_tour_fit_and_score(model, folder, tmp_path):
    d = _folder_with(tmp_path, folder, "bomb.png", bomb_png)
    assert one_line_error(cmg("tour", "--data", d, "--out", tmp_path / "t"), "image too large")
    assert one_line_error(cmg("fit", "--data", d, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", "ssd", *TINY), "bomb.png")
    assert one_line_error(cmg("score", "--model", model, d / "img/0.png", d / "img/bomb.png"), "image too large")
    rc, out, err = cmg("score", "--model", model, "--on-error", "skip", d / "img/0.png", d / "img/bomb.png")
    assert rc == 0 and len(out.splitlines()) == 2 and "skipped" in err and "bomb.png" in err

# 5. cmg score streams its rows --------------------------------------------------------------------------------------------
def test_score_streams_rows_before_a_bad_file_and_skips(model, folder, tmp_path):
    bad = tmp_path / "bad.png"; bad.write_bytes(b"\x89PNG garbage")
    good = [folder / "img/0.png", folder / "img/1.png"]
    rc, out, err = cmg("score", "--model", model, "--chunk", "1", good[0], bad, good[1])
    assert rc == 2 and out.splitlines()[0] == "path,anomaly_score,verdict" and len(out.splitlines()) == 2 and "bad.png" in err
    rc, out, err = cmg("score", "--model", model, "--chunk", "1", "--on-error", "skip", good[0], bad, good[1])
    rows = out.splitlines()[1:]
    assert rc == 0 and [r.split(",")[0] for r in rows] == list(map(str, good)) and f"skipped {bad}" in err

def test_score_csv_natural_order_and_out_file(model, folder, tmp_path):
    rc, out, _ = cmg("score", "--model", model, "--out", tmp_path / "s.csv", folder / "img")
    assert rc == 0 and out == ""
    import pandas as pd
    df = pd.read_csv(tmp_path / "s.csv")
    assert [Path(p).name for p in df.path] == [f"{i}.png" for i in range(120)]     # 0, 1, 2, ..., not 0, 1, 10, 100
    np.testing.assert_allclose(df.anomaly_score, CMG.load(model).anomaly_score(folder / "img"), rtol=1e-5)
    assert not list(tmp_path.glob("*.partial"))

def test_heatmap_write_failure_keeps_the_scores(model, folder, tmp_path):
    hm = tmp_path / "hm"; (hm / "0.png").mkdir(parents=True)           # a folder where the PNG should go
    rc, out, err = cmg("score", "--model", model, "--heatmap", hm, "--grid", "2", folder / "img/0.png")
    assert rc == 2 and "cmg: error:" in err and "Traceback" not in err
    assert out.splitlines()[1].startswith(str(folder / "img/0.png"))    # the score was written first

# 6. settings are checked before anything runs -----------------------------------------------------------------------------
@pytest.mark.parametrize("flags,msg", [
    (["--set", "lr=abc"], "lr must be a number"), (["--set", "tau=null"], "tau must be a number"),
    (["--set", "knn_k=maybe"], "knn_k must be an integer"), (["--set", "epochs=1.5"], "epochs must be an integer"),
    (["--epochs", "0"], "epochs must be >= 1"), (["--lam", "inf"], "lam must be a finite number"),
    (["--seed", "-1"], "seed must be >= 0"), (["--batch-size", "1"], "batch_size must be >= 2"),
    (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
])
def test_bad_settings_name_the_setting_before_data(tmp_path, flags, msg):
    res = cmg("fit", "--data", tmp_path / "no-data", "--normal-groups", "a", "--out", tmp_path / "m.cmg", "--method", "cmg", *flags)
    assert one_line_error(res, msg), res                                   # not "data folder not found": checked first

# 7. incompatible or corrupt model files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("edit,msg", [("feat_dim", "settings were edited after it was saved"), ("backbone", "settings were edited after it was saved"),
                                      ("feat_dim-old", "does not fit its own settings"), ("backbone-old", "does not fit its own settings"),
                                      ("missing", "incomplete CMG model file")])
def test_mismatched_model_file(model, tmp_path, folder, edit, msg):
    "Edited settings are refused by the settings hash; a file from before the hash (none stored) by the weights' shapes."
    st = torch.load(model, weights_only=True)
    cfg = json.loads(st["config"])
    if edit.startswith("feat_dim"): cfg["feat_dim"] = 64
    if edit.startswith("backbone"): cfg["backbone"] = "resnet18"
    if edit.endswith("-old"): st.pop("settings_sha")
    st["config"] = json.dumps(cfg)
    if edit == "missing": del st["encoder"]
    torch.save(st, tmp_path / "x.cmg")
    assert one_line_error(cmg("score", "--model", tmp_path / "x.cmg", folder / "img/0.png"), msg)

# 8. the smaller ones ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,msg", [
    (["demo", "--seeds", "0"], "--seeds must be >= 1"), (["demo", "--n-images", "5"], "--n-images must be >= 100"),
    (["tour", "-n", "0"], "-n must be >= 1"),
])
def test_demo_and_tour_arguments(tmp_path, args, msg):
    assert one_line_error(cmg(*args, "--out", tmp_path / "o"), msg)
    assert not (tmp_path / "o").exists()

def test_threshold_nan_and_grid_too_large(model, folder, tmp_path):
    assert one_line_error(cmg("score", "--model", model, "--threshold", "nan", folder / "img/0.png"), "--threshold must be a finite number")
    res = cmg("score", "--model", model, "--heatmap", tmp_path / "hm", "--grid", "100", folder / "img/0.png")
    assert one_line_error(res, "the grid does not fit"), res
    assert not (tmp_path / "hm").exists()

def test_score_says_how_many_validation_images_set_the_threshold(model, folder):
    "Issue 24: `cmg score` prints the threshold and the number of normal validation images it rests on (saved in the model)."
    from cmg_nb.evaluation import load_detector
    det = load_detector(model)
    n = det.info_["n_valid"]
    assert n == len(det.decision_scores_) if hasattr(det, "decision_scores_") else n > 0
    rc, out, err = cmg("score", "--model", model, "--json", folder / "img/0.png")
    assert rc == 0 and json.loads(out)["n_valid"] == n and json.loads(out)["threshold"] == -det.offset_
    assert f"threshold {-det.offset_:.6g}: the model's, set on {n} normal validation image(s)" in err, err
    rc, out, err = cmg("score", "--model", model, "--threshold", "0.5", "--json", folder / "img/0.png")
    assert rc == 0 and "n_valid" not in json.loads(out) and "set on" not in err    # a threshold of the user's own

def test_group_name_with_a_comma(folder, tmp_path):
    d = tmp_path / "data"; shutil.copytree(folder, d)
    f = d / "captions.csv"; f.write_text(f.read_text().replace(",circle\n", ',"round, thing"\n'))
    (tmp_path / "g.txt").write_text("round, thing\n")
    for flag in ("round, thing", f"@{tmp_path / 'g.txt'}"):
        rc, out, err = cmg("fit", "--data", d, "--normal-groups", flag, "--out", tmp_path / "m.cmg", "--method", "ssd", *TINY)
        assert rc == 0 and "groups round, thing" in out, err

@pytest.mark.parametrize("kind,msg", [("semicolon", "semicolon-separated: use commas"), ("latin1", "captions.csv: not UTF-8"),
                                      ("utf16", "captions.csv: not UTF-8"), ("blank", "captions.csv, line 5: empty caption")])
def test_captions_csv_problems(tmp_path, kind, msg):
    d = tmp_path / "d"; d.mkdir()
    text, enc = dict(semicolon=("image;caption;group\na.png;x;g\n", "utf-8"), latin1=("image,caption,group\na.png,caf\xe9,g\n", "latin-1"),
                     utf16=("image,caption,group\na.png,x,g\n", "utf-16"), blank=("image,caption,group\na.png,x,g\n\n\nb.png,,g\n", "utf-8"))[kind]
    (d / "captions.csv").write_bytes(text.encode(enc))
    assert one_line_error(cmg("tour", "--data", d, "--out", tmp_path / "t"), msg)

# 9. resources -------------------------------------------------------------------------------------------------------------
def test_stale_temp_files_are_removed_on_the_next_save(model, tmp_path):
    (tmp_path / "m.cmg.tmp999999999").write_bytes(b"x" * 1000)         # left by a process killed during a save
    CMG.load(model).save(tmp_path / "m.cmg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cmg"]

def test_heatmaps_shrink_huge_images_first(model, tmp_path, monkeypatch):
    import cmg_nb.explain as ex
    seen = []
    real = ex.region_contributions
    monkeypatch.setattr(ex, "region_contributions", lambda det, ims, *a, **k: (seen.extend(im.shape for im in ims), real(det, ims, *a, **k))[1])
    Image.fromarray(np.full((3000, 2000, 3), 128, np.uint8)).save(tmp_path / "big.png")
    rc, out, err = cmg("score", "--model", model, "--heatmap", tmp_path / "hm", "--grid", "2", tmp_path / "big.png")
    assert rc == 0, err
    assert seen == [(512, 512, 3)]                   # the model's square view (the resize policy), at most 512 px
    assert np.load(tmp_path / "hm" / "big.npy").shape == (2, 2)

# issue 16: logs ------------------------------------------------------------------------------------------------------------
def test_fit_log_to_a_file_has_headings_and_one_line_per_epoch(folder, tmp_path):
    "stdout to a file: no progress-bar redraws (carriage returns), a heading per training table, one line per epoch."
    import subprocess, sys
    from conftest import run_cmg
    flags = [f for f in TINY if f != "-q"]
    flags[flags.index("--epochs") + 1] = "3"
    r = run_cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", tmp_path / "m.cmg", "--method", "cmg", *flags)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout
    lines = r.stdout.splitlines()
    for title in ("matching model E1 (Eq. 1): 1 epoch(s)", "RID (Eq. 3): 1 epoch(s)", "anomaly encoder E2 (NT-Xent + lambda L_global, Eq. 13): 3 epoch(s)"):
        assert title in lines, r.stdout
    i = lines.index("anomaly encoder E2 (NT-Xent + lambda L_global, Eq. 13): 3 epoch(s)")
    assert lines[i + 1].split()[:3] == ["epoch", "train_loss", "valid_loss"]
    assert [l.split()[0] for l in lines[i + 2:i + 5]] == ["0", "1", "2"]
    assert len(r.stdout) < 3000

def test_fits_leave_no_checkpoint_folders(folder, tmp_path, monkeypatch):
    "Every trained stage (E1, RID, E2, SHE) removes its checkpoint folder: 1,000 fits left 1,000 folders of up to 48 MB."
    import tempfile
    scratch = tmp_path / "tmp"; scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for method in ("cmg", "she"):
        flags = TINY if method == "cmg" else ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--batch-size", "32", "-q"]   # SHE's own
        rc, out, err = cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", tmp_path / f"{method}.cmg", "--method", method, *flags)
        assert rc == 0, err
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("cmg_")) == []

def test_progress_bars_stay_out_of_a_log(folder):
    "A loop with progress=True writes no bar when stdout is a file (it did: one redraw per item)."
    import subprocess, sys
    code = "import sys; from cmg_nb.loaders import load_folder; load_folder(sys.argv[1]).to_array(16, progress=True); print('done')"
    r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\n" and "\r" not in r.stderr

# issue 16: the CLI is built from CMGConfig ----------------------------------------------------------------------------------
def test_every_setting_is_a_flag_with_help_and_config_files_work(tmp_path):
    from dataclasses import fields
    from cmg_nb.core import CMGConfig
    rc, out, _ = cmg("fit", "--method", "cmg", "--help")                  # a from-scratch method: CMGConfig's settings (but the switches its name fixes)
    assert rc == 0
    import re
    from cmg_nb.core import SOURCE_ONLY
    for f in fields(CMGConfig):                                             # (--cmer is not --cmer-candidates)
        assert bool(re.search("--" + f.name.replace("_", "-") + r"(?![-\w])", out)) == (f.name not in ("features", "cmer", "cmle", *SOURCE_ONLY["frozen"])), f.name
    assert "M: 4 = 2x2 grid, 9 = 3x3 grid, any square number (default: 4)" in " ".join(out.split())
    from cmg_nb.cli import frozen_settings
    rc, out, _ = cmg("fit", "--help")                                       # the CPU default, cmg-frozen: the frozen source's settings
    assert rc == 0 and all(("--" + n.replace("_", "-")) in out for n in frozen_settings("cmg-frozen"))
    (tmp_path / "c.json").write_text('{"epochs": 2, "scorer": "knn"}')
    rc, out, _ = cmg("evaluate", "--data", tmp_path, "--normal-groups", "a", "--config", tmp_path / "c.json", "--print-config")
    import yaml
    assert rc == 0 and CMGConfig.from_dict(yaml.safe_load(out)) == CMGConfig(epochs=2, scorer="knn")
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    assert one_line_error(cmg("evaluate", "--data", tmp_path, "--normal-groups", "a", "--config", tmp_path / "bad.yaml"), "not valid YAML or JSON")
    rc, _, err = cmg("fit", "--data", tmp_path, "--normal-groups", "a", "--out", tmp_path / "m", "--mask-mode", "blur")
    assert rc == 2 and "invalid choice: 'blur' (choose from hard, soft)" in err.replace("'hard', 'soft'", "hard, soft")
    assert cmg("--version")[1].startswith("cmg_nb ")
    from cmg_nb.evaluation import available_methods
    h = "".join(cmg("evaluate", "--help")[1].split())                     # argparse wraps lines (even inside names)
    assert "comma-separatedregisteredmethods:" + ",".join(available_methods()) in h and "runsseeds0..N-1" in h

# issue 16: metrics beyond AUROC/AUPR and per-image scores ---------------------------------------------------------------------
def test_evaluate_prints_threshold_metrics_and_writes_scores(folder, tmp_path):
    from sklearn.metrics import roc_auc_score, f1_score
    import pandas as pd
    rc, out, err = cmg("evaluate", "--data", folder, "--normal-groups", "circle,square", "--methods", "pretrained-maha-32", "--seeds", "1",
                       "--json", tmp_path / "r.json", "--scores-out", tmp_path / "s.csv", *TINY)
    assert rc == 0, err
    assert "FPR@95TPR" in out and "AUPR chance" in out
    res, s = json.loads((tmp_path / "r.json").read_text())["pretrained-maha-32"], pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns) == ["image", "group", "is_anomaly", "method", "seed", "anomaly_score"] and set(s.method) == {"pretrained-maha-32"}
    assert res["auroc"] == [pytest.approx(roc_auc_score(s.is_anomaly, s.anomaly_score), abs=1e-6)]   # the file is what was scored
    assert res["chance_aupr_mean"] == pytest.approx(s.is_anomaly.mean())
    neg, pos = s.anomaly_score[s.is_anomaly == 0].to_numpy(), np.sort(s.anomaly_score[s.is_anomaly == 1].to_numpy())[::-1]
    thr95 = pos[int(np.ceil(0.95 * len(pos))) - 1]                      # the score that finds 95% of the anomalies
    assert res["fpr95_mean"] == pytest.approx((neg >= thr95).mean())
    assert {"precision_mean", "recall_mean", "f1_mean"} <= set(res)     # their values are checked against sklearn in 11_evaluation

# issue 16: ONNX export --------------------------------------------------------------------------------------------------------
def test_cmg_export_onnx_scores_equal_pytorch(model, folder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rc, out, err = cmg("export", "--model", model, "--onnx", tmp_path / "m.onnx")
    assert rc == 0 and "wrote" in out, err
    det, ims = CMG.load(model), [folder / f"img/{i}.png" for i in range(10)]
    x = as_image_tensor(ims, det.config.image_size).numpy()
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"images": x})[0]
    np.testing.assert_allclose(got, det.anomaly_score(ims), rtol=1e-4, atol=1e-4)
    other = tmp_path / "p.cmg"                                           # a method without a graph is refused, with the reason
    assert cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", other, "--method", "pretrained-maha-32", "-q")[0] == 0
    assert one_line_error(cmg("export", "--model", other, "--onnx", tmp_path / "p.onnx"), "PretrainedMahalanobis cannot be exported to ONNX: its scoring path")

def test_cmg_export_onnx_frozen_from_raw_images(folder, tmp_path):
    "issue 23: the default method (cmg-frozen) exported; onnxruntime on the raw image files (resized in the graph) gives `cmg score`'s scores."
    ort = pytest.importorskip("onnxruntime")
    m, f = tmp_path / "f.cmg", tmp_path / "f.onnx"
    rc, out, err = cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", m, "--method", "cmg-frozen", "--image-size", "32",
                       "--window-grid", "2", "--epochs", "2", "--match-epochs", "1", "--rid-epochs", "1", "--text-encoder", "tfidf", "-q")
    assert rc == 0, err
    rc, out, err = cmg("export", "--model", m, "--onnx", f)
    assert rc == 0 and "(N, H, W, 3) uint8 of any H, W" in out, err
    ims = [folder / f"img/{i}.png" for i in range(12)]
    assert cmg("score", "--model", m, "--json", "--out", tmp_path / "s.json", *ims)[0] == 0
    want = [r["anomaly_score"] for r in json.loads((tmp_path / "s.json").read_text())["results"]]
    x = np.stack([read_image(p) for p in ims])                          # raw 24 x 24 uint8: the graph resizes them to 32
    got, choice = ort.InferenceSession(str(f)).run(None, {"images": x})
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)            # kNN scores: cosine distances in [0, 2]
    from cmg_nb.evaluation import load_detector
    np.testing.assert_array_equal(choice, load_detector(m).choices(ims))

def test_preset_profiles_from_the_command_line(tmp_path):
    "issue 14: `--preset P --profile paper|cpu` prints which profile it used; explicit flags win over the profile."
    import yaml
    from cmg_nb.experiments import PRESET_PROFILES
    rc, out, _ = cmg("evaluate", "--data", tmp_path, "--preset", "wikipedia", "--profile", "paper", "--epochs", "3", "--print-config")
    assert rc == 0 and out.startswith("preset wikipedia, profile paper")
    cfg = yaml.safe_load("\n".join(l for l in out.splitlines() if not l.startswith(("preset ", "  "))))   # the YAML after the profile lines
    want = PRESET_PROFILES["wikipedia"]["paper"]["config"]
    assert cfg["epochs"] == 3 and cfg["n_regions"] == want["n_regions"] == 9 and cfg["backbone"] == want["backbone"]
    assert one_line_error(cmg("evaluate", "--data", tmp_path, "--normal-groups", "a", "--profile", "cpu"), "--profile is for the presets")
