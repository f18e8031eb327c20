"""Nothing lost, nothing silently wrong (issue 25): outputs never overwrite inputs, full disks, heatmap names, aliased paths.

The full-disk cases use a real, tiny tmpfs when the tests run as root (and skip with the reason otherwise); the case without a
mount, torch.save's `RuntimeError`, is test_bad_input.py's test_full_disk_at_save_keeps_the_fitted_model."""
import os, json, shutil, subprocess
import numpy as np
from pathlib import Path
import pytest
import torch
from cmg_nb.io import check_writable, OutputError
from cmg_nb.loaders import load_folder
from cmg_nb.pipeline import CMG
from test_bad_input import cmg, one_line_error, TINY, fit_cli_model

@pytest.fixture(scope="module")
def folder(tmp_path_factory, scene_folder): return scene_folder(tmp_path_factory.mktemp("scenes"), 40)

@pytest.fixture(scope="module")
def model(folder, tmp_path_factory): return fit_cli_model(folder, tmp_path_factory, "ssd")

@pytest.fixture
def tiny_fs(tmp_path):
    "A real 64 KiB tmpfs (root only): writes beyond it fail with ENOSPC as on a full disk."
    if os.geteuid() != 0: pytest.skip("a real full disk needs a tmpfs mount, which needs root")
    mnt = tmp_path / "mnt"; mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)

def fill(mnt:Path, leave:int=0):
    "Fill the file system at `mnt`, then free `leave` bytes."
    f = mnt / "filler"
    with open(f, "wb", buffering=0) as fh:
        try:
            while True: fh.write(b"\0" * 4096)
        except OSError: pass
    if leave: os.truncate(f, max(0, f.stat().st_size - leave))

def error_line(res, msg)->bool:
    "One `cmg: error:` line containing `msg` (third-party warnings, one line each, aside)."
    rc, out, err = res
    return one_line_error((rc, out, "\n".join(l for l in err.splitlines() if not l.startswith("cmg: warning:"))), msg)

def leftovers(d:Path)->list: return sorted(p.name for p in Path(d).rglob("*") if p.name != "filler")

# 1. an output never overwrites an input ---------------------------------------------------------------------------------
def test_fit_out_may_not_be_the_captions(folder, tmp_path):
    folder = Path(shutil.copytree(folder, tmp_path / "data"))           # the old code overwrote it
    before = (folder / "captions.csv").read_bytes()
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", f"{folder}/./captions.csv", "--method", "ssd", *TINY)
    assert one_line_error(res, "would overwrite the input data file"), res
    (tmp_path / "link.cmg").symlink_to(folder / "captions.csv")          # a symlink counts too
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "link.cmg", "--method", "ssd", *TINY)
    assert one_line_error(res, "would overwrite the input data file"), res
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", folder / "img" / "3.png", "--method", "ssd", *TINY)
    assert one_line_error(res, "would overwrite the input data image"), res
    assert (folder / "captions.csv").read_bytes() == before

def test_score_out_may_not_be_the_model_or_an_image(model, folder, tmp_path):
    model = Path(shutil.copy(model, tmp_path / "m.cmg"))                 # the old code overwrote it
    folder = Path(shutil.copytree(folder, tmp_path / "data"))
    m, im = model.read_bytes(), (folder / "img/0.png").read_bytes()
    alias = Path(os.path.relpath(model)).parent / "." / model.name
    assert one_line_error(cmg("score", "--model", model, "--out", alias, folder / "img/0.png"), "would overwrite the input --model"), alias
    assert one_line_error(cmg("score", "--model", model, "--out", folder / "img/0.png", folder / "img/0.png"), "would overwrite the input image")
    res = cmg("score", "--model", model, "--heatmap", folder / "img", "--grid", "2", folder / "img/0.png")   # the heatmap 0.png
    assert one_line_error(res, "would overwrite the input image"), res
    assert model.read_bytes() == m and (folder / "img/0.png").read_bytes() == im

def test_evaluate_outputs_distinct_and_export_not_the_model(model, folder, tmp_path):
    model = Path(shutil.copy(model, tmp_path / "m.cmg"))
    f = tmp_path / "r.txt"
    res = cmg("evaluate", "--data", folder, "--normal-groups", "circle", "--methods", "ssd", "--seeds", "1", "--json", f,
              "--scores-out", tmp_path / "sub" / ".." / "r.txt", *TINY)
    assert one_line_error(res, "would overwrite the other output --json") and "OneClassSplit" not in res[1], res
    assert one_line_error(cmg("export", "--model", model, "--onnx", model), "would overwrite the input --model")

# 2. a full disk at save never loses the fitted model ----------------------------------------------------------------------
def test_full_disk_at_save_real_tmpfs(folder, tiny_fs):
    res = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tiny_fs / "m.cmg", "--method", "ssd", *TINY)
    assert one_line_error(res, "No space left on device") and "the fitted model was saved to" in res[2], res
    rescued = Path(res[2].split("saved to ")[1].strip())
    assert CMG.load(rescued).is_fitted
    rescued.unlink()
    assert leftovers(tiny_fs) == []                                    # no half-written model, no temporary

def test_write_probe_writes_bytes(tiny_fs):
    fill(tiny_fs)
    with pytest.raises(OutputError, match="No space left on device"): check_writable(tiny_fs / "m.cmg")

# 3. heatmap names never collide -----------------------------------------------------------------------------------------
def test_heatmap_names_never_collide(model, folder, tmp_path):
    ims = []
    for sub, name, src in [("a", "0.png", 0), ("b", "0.png", 1), ("c", "0_2.png", 2)]:
        (tmp_path / sub).mkdir(); shutil.copy(folder / f"img/{src}.png", tmp_path / sub / name); ims.append(tmp_path / sub / name)
    rc, out, err = cmg("score", "--model", model, "--heatmap", tmp_path / "hm", "--grid", "2", "--out", tmp_path / "s.csv", *ims)
    assert rc == 0, err
    import pandas as pd
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(set(df.heatmap)) == 3 and all(Path(h).is_file() for h in df.heatmap)
    assert len(list((tmp_path / "hm").glob("*.png"))) == 3 and len(list((tmp_path / "hm").glob("*.npy"))) == 3

# 4. one file under two names in two groups --------------------------------------------------------------------------------
def test_aliased_path_in_two_groups_is_refused(folder, tmp_path):
    d = tmp_path / "d"; shutil.copytree(folder, d)
    lines = (d / "captions.csv").read_text().splitlines()
    (d / "captions.csv").write_text("\n".join(lines + ['./img/7.png,"a cross",zzz']) + "\n")
    with pytest.raises(ValueError, match=r"\./img/7\.png is in group 'zzz' here but .* \(line \d+ as img/7\.png, the same file\)"): load_folder(d)
    (d / "captions.csv").write_text("\n".join(lines + ['./img/7.png,"one more caption",' + lines[15].rsplit(",", 1)[1]]) + "\n")
    assert len(load_folder(d)) == 40                                      # the same group: one item, not two

# 6. I/O errors: one line, no partial files, no empty folders; an unwritable cache is a warning ------------------------------
def test_score_out_on_a_full_disk(model, folder, tiny_fs):
    fill(tiny_fs, leave=8192)                                             # room for the write check, not for 200 rows
    res = cmg("score", "--model", model, "--out", tiny_fs / "out" / "s.csv", *[folder / "img"] * 5)
    assert one_line_error(res, "No space left on device"), res
    assert leftovers(tiny_fs) == []                                       # no s.csv.partial, no empty out/

def test_tour_on_a_full_disk(tiny_fs):
    fill(tiny_fs, leave=8192)
    res = cmg("tour", "--out", tiny_fs / "t", "-n", "4")
    assert one_line_error(res, "No space left on device"), res
    assert leftovers(tiny_fs) == []

def test_export_onnx_on_a_full_disk(model, tiny_fs):
    pytest.importorskip("onnx")
    fill(tiny_fs, leave=8192)
    res = cmg("export", "--model", model, "--onnx", tiny_fs / "m.onnx")
    assert error_line(res, f"No space left on device: {tiny_fs / 'm.onnx'}"), res
    assert leftovers(tiny_fs) == []

def test_evaluate_json_on_a_disk_that_fills_during_the_run(folder, tiny_fs, monkeypatch):
    import cmg_nb.evaluation as ev
    real = ev.run_methods
    def run_then_fill(*a, **k): out = real(*a, **k); fill(tiny_fs); return out      # another process fills the disk meanwhile
    monkeypatch.setattr(ev, "run_methods", run_then_fill)
    res = cmg("evaluate", "--data", folder, "--normal-groups", "circle,square", "--methods", "ssd", "--seeds", "1",
              "--json", tiny_fs / "r" / "r.json", *TINY)
    assert error_line(res, f"No space left on device: {tiny_fs / 'r' / 'r.json'}"), res
    assert "AUROC" in res[1] or "auroc" in res[1].lower()                 # the tables were printed before the write
    assert leftovers(tiny_fs) == []                                       # no temporary, no empty r/

def test_unwritable_cache_is_a_warning(tmp_path):
    from cmg_nb.text import encode_texts, get_text_encoder
    (tmp_path / "afile").write_text("x")
    enc = get_text_encoder("tfidf", fit_texts=["a red circle", "a blue square"])
    with pytest.warns(UserWarning, match="cannot write the text-embedding cache"):
        e = encode_texts(["a red circle"], enc, cache_dir=tmp_path / "afile" / "cache")
    assert e.shape[0] == 1

# 7. and 9. model files checked at load; empty inputs ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def frozen(folder, tmp_path_factory):
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import one_class_split
    from cmg_nb.frozen import frozen_method
    sp = one_class_split(load_folder(folder), ["circle", "square"], seed=0)
    det = frozen_method("cmg-frozen", CMGConfig(text_encoder="tfidf"), seed=0, epochs=1, match_epochs=1, rid_epochs=1,
                        window_grid=2, image_size=32).fit(sp.train, sp.valid, progress=False)
    return det, det.save(tmp_path_factory.mktemp("frozen") / "f.cmg")

def test_frozen_empty_array_and_tensor_give_empty_scores(frozen):
    det, _ = frozen
    assert det.anomaly_score(np.zeros((0, 24, 24, 3), np.uint8)).shape == (0,)
    assert det.anomaly_score(torch.zeros(0, 3, 24, 24)).shape == (0,)

def test_frozen_file_without_its_head_is_refused_at_load(frozen, folder, tmp_path):
    st = torch.load(frozen[1], weights_only=True); del st["head"]; torch.save(st, tmp_path / "nohead.cmg")
    res = cmg("score", "--model", tmp_path / "nohead.cmg", folder / "img/0.png")
    assert one_line_error(res, "incomplete FrozenCMG model file (no 'head')"), res

@pytest.mark.parametrize("edit", [dict(n_regions=9), dict(image_size=64), dict(cmer=False)])
def test_edited_model_settings_are_refused_at_load(frozen, folder, tmp_path, edit):
    st = torch.load(frozen[1], weights_only=True)
    st["config"] = json.dumps({**json.loads(st["config"]), **edit}); torch.save(st, tmp_path / "edited.cmg")
    res = cmg("score", "--model", tmp_path / "edited.cmg", folder / "img/0.png")
    assert one_line_error(res, "its settings were edited after it was saved"), res

# 10. a symlink that cannot be read is reported like any unreadable file ----------------------------------------------------
def test_broken_symlinks_in_a_scored_folder_are_named(model, folder, tmp_path):
    d = tmp_path / "ims"; d.mkdir()
    shutil.copy(folder / "img/0.png", d / "0.png")
    (d / "1.png").symlink_to(tmp_path / "gone.png"); (d / "2.png").symlink_to(d / "2.png")    # dangling; a loop
    assert one_line_error(cmg("score", "--model", model, d), "unreadable symbolic link")
    rc, out, err = cmg("score", "--model", model, "--on-error", "skip", d)
    assert rc == 0 and len(out.splitlines()) == 2, (out, err)
    assert f"skipped {d / '1.png'}" in err and f"skipped {d / '2.png'}" in err and "skipped 2 unreadable" in err

# 8. hostile settings files -----------------------------------------------------------------------------------------------
def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefg", "bcdefgh")]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines + ["lr: *h"]) + "\n")
    t = time.time()
    res = cmg("fit", "--data", tmp_path, "--normal-groups", "a", "--out", tmp_path / "m.cmg", "--method", "ssd", "--config", tmp_path / "bomb.yaml")
    assert one_line_error(res, "YAML aliases") and time.time() - t < 5, res

def test_a_huge_value_is_quoted_short(tmp_path):
    (tmp_path / "big.yaml").write_text("lr: [" + ", ".join(["1"] * 100_000) + "]\n")
    res = cmg("fit", "--data", tmp_path, "--normal-groups", "a", "--out", tmp_path / "m.cmg", "--method", "ssd", "--config", tmp_path / "big.yaml")
    assert one_line_error(res, "lr must be a number") and len(res[2]) < 200, res[2][:300]

def test_edited_from_scratch_model_is_refused_at_load(model, folder, tmp_path):
    st = torch.load(model, weights_only=True)
    st["config"] = json.dumps({**json.loads(st["config"]), "image_size": 24}); torch.save(st, tmp_path / "edited.cmg")
    res = cmg("score", "--model", tmp_path / "edited.cmg", folder / "img/0.png")
    assert one_line_error(res, "its settings were edited after it was saved"), res

def test_absurd_caption_counts_are_bounded_with_a_warning(folder, tmp_path):
    d = tmp_path / "d"; shutil.copytree(folder, d)
    with open(d / "captions.csv", "a") as f: f.writelines(f'img/3.png,"caption {i}",{load_folder(folder).groups[3]}\n' for i in range(1200))
    with pytest.warns(UserWarning, match=r"1 image\(s\) have more than 1000 captions \(e.g. img/3.png: 1202\)"): data = load_folder(d)
    assert len(data.captions[3]) == 1000 and len(load_folder(d, max_captions=None).captions[3]) == 1202

CAPTIONS = ["a red circle", "a small red disc drawn with a thick outline on a grey background", "a blue square",
            "a triangle", "a green triangle in the middle of the picture", "two shapes", "a circle, a square and a star",
            "an outline of a square", "a star with five points, filled in yellow, slightly off centre"]

def test_caption_embeddings_do_not_depend_on_the_cache(tmp_path):
    "Issue 25 (5): a caption's embedding is the same bits fresh, from a cache filled by a run over other captions, or uncached."
    from cmg_nb.text import get_text_encoder, encode_texts
    enc = get_text_encoder("minilm")
    fresh = encode_texts(CAPTIONS, enc, tmp_path / "empty")
    encode_texts(CAPTIONS[::3] + ["a photograph of a harbour at dusk, with boats and a lighthouse far away"], enc, tmp_path / "filled")
    np.testing.assert_array_equal(encode_texts(CAPTIONS, enc, tmp_path / "filled"), fresh)   # 3 cached (other batch), 6 fresh
    np.testing.assert_array_equal(encode_texts(CAPTIONS, enc, False), fresh)

def test_fit_does_not_depend_on_the_cache(folder, tmp_path, monkeypatch):
    "Issue 25 (5): the same seed and data give bit-identical scores with an empty caption cache and with one another run filled."
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import one_class_split
    from cmg_nb.frozen import frozen_method
    from cmg_nb.text import get_text_encoder, encode_texts
    split = one_class_split(load_folder(folder), ["circle", "square"], seed=0)
    caps = sorted({c for cs in split.train.captions for c in cs})
    def scores(cache):
        monkeypatch.setenv("CMG_CACHE_DIR", str(cache))
        det = frozen_method("ssd+cmle-frozen", CMGConfig(), seed=0, epochs=2).fit(split.train, split.valid, progress=False)
        return det.anomaly_score(split.test)
    empty = scores(tmp_path / "empty")
    monkeypatch.setenv("CMG_CACHE_DIR", str(tmp_path / "filled"))
    encode_texts(caps[::2] + CAPTIONS, get_text_encoder("minilm"), None)   # an earlier run over other captions, half of these among them
    np.testing.assert_array_equal(scores(tmp_path / "filled"), empty)
