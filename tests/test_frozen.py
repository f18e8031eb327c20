"The frozen-feature family end to end: the feature cache, save -> load, and `cmg fit/score/evaluate` on a tiny folder (the contract of every method: test_contract.py)."
import json
import numpy as np
import pytest
from cmg_nb.core import CMGConfig
from cmg_nb.data import one_class_split
from cmg_nb.loaders import load_folder
from cmg_nb.detector import Detector
from cmg_nb.evaluation import load_detector, make_detector
from cmg_nb.frozen import FrozenCMG, encode, frozen_backbone, frozen_method

FAST = dict(epochs=3, match_epochs=2, rid_epochs=1, window_grid=2)   # 2 x 2 windows: 1 + M + 4 views, half the backbone passes of the default
SMALL = CMGConfig(text_encoder="tfidf")

from conftest import run_cmg as cmg
from test_pipeline import check_against_scores   # AUROC/AUPR recomputed from the saved scores

@pytest.fixture(scope="module")
def folder(tmp_path_factory, scene_folder): return scene_folder(tmp_path_factory.mktemp("scenes"), 120)

@pytest.fixture(scope="module")
def split(folder): return one_class_split(load_folder(folder), ["circle", "square"], seed=0)

def test_cache_holds_fresh_features(split):
    cache = {}
    det = frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, stage_cache=cache, progress=False)
    net, _ = frozen_backbone()
    feats = {k: v for k, v in cache.items() if k[0] == "frozen-features"}
    kinds = {k[2] for k in feats}
    assert "plain" in kinds and any(k.startswith("views-") for k in kinds), kinds            # the whole image, and every other candidate view
    x = split.train.to_array(96)
    key = next(k for k in feats if k[2] == "plain" and feats[k].shape[0] == len(x))
    np.testing.assert_allclose(feats[key], encode(net, x), rtol=1e-5, atol=1e-5)
    n0 = det.info_["encoded"]
    again = frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, stage_cache=cache, progress=False)
    assert n0 > 0 and again.info_["encoded"] == 0                      # the second fit encodes nothing
    np.testing.assert_array_equal(again.anomaly_score(split.test), det.anomaly_score(split.test))

def test_seeds_reproduce(split):
    fit = lambda s: frozen_method("ssd+cmle-frozen", SMALL, seed=s, **FAST).fit(split.train, split.valid, progress=False).anomaly_score(split.test)
    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)

def test_scorers_and_switch(split):
    det = frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, progress=False)
    G = det.features(split.test)
    np.testing.assert_allclose(det.anomaly_score(split.test, scorer="maha"), det.scorers_["maha"].score(G))
    u = G / np.linalg.norm(G, axis=1, keepdims=True)
    T = det.scorers_["knn"].nn_._fit_X; T = T / np.linalg.norm(T, axis=1, keepdims=True)
    ref = np.sort(1 - u @ T.T, 1)[:, :det.config.knn_k].mean(1)                # kNN by hand
    np.testing.assert_allclose(det.anomaly_score(split.test), ref, atol=1e-5)
    det.set_scorer("maha")
    assert det.offset_ == det.offsets_["maha"]
    with pytest.raises(ValueError, match="scorer must be"): det.anomaly_score(split.test, scorer="cos")

def test_cli_fit_score_evaluate_frozen(folder, tmp_path):
    out = tmp_path / "m.cmg"
    r = cmg("fit", "--data", folder, "--normal-groups", "circle,square", "--out", out, "--text-encoder", "tfidf", "--image-size", "32", "-q")
    assert r.returncode == 0, r.stderr
    assert "saved cmg-frozen detector" in r.stdout                     # the CPU default
    ims = sorted((folder / "img").glob("*.png"))[:4]
    js = json.loads(cmg("score", "--model", out, "--json", *ims).stdout)
    det = load_detector(out)
    np.testing.assert_allclose([x["anomaly_score"] for x in js["results"]], det.anomaly_score(ims), rtol=1e-6)
    assert [x["verdict"] for x in js["results"]] == ["anomaly" if p == -1 else "normal" for p in det.predict(ims)]
    r = cmg("evaluate", "--data", folder, "--normal-groups", "circle,square", "--methods", "cmg-frozen,pretrained-knn",
            "--seeds", "1", "--text-encoder", "tfidf", "--image-size", "32", "--json", tmp_path / "res.json", "--scores-out", tmp_path / "scores.csv", "-q")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert list(res) == ["cmg-frozen", "pretrained-knn"] and res["cmg-frozen"]["seeds"] == [0]
    check_against_scores(res, tmp_path / "scores.csv")          # AUROC and AUPR recomputed with sklearn from the saved scores

def test_cli_fit_refuses_checkpoint_for_frozen(folder, tmp_path):
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", "cmg-frozen", "--checkpoint", tmp_path / "ck")
    assert r.returncode == 2 and "--checkpoint is for the from-scratch methods" in r.stderr and not (tmp_path / "m.cmg").exists()

def test_cmg_knn_scorer_save_load(split, tmp_path):
    from cmg_nb.pipeline import CMG
    from cmg_nb.scoring import KNNScorer
    tiny = dict(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32)
    det = CMG(**tiny, cmer=False, scorer="knn", knn_k=3).fit(split.train, split.valid, progress=False)
    assert isinstance(det.scorer_, KNNScorer) and det.scorer_.k == 3
    np.testing.assert_allclose(det.anomaly_score(split.test), KNNScorer(3).fit(det.features(split.train)).score(det.features(split.test)), atol=1e-6)
    np.testing.assert_array_equal(CMG.load(det.save(tmp_path / "k.cmg")).anomaly_score(split.test), det.anomaly_score(split.test))
    with pytest.raises(ValueError, match="scorer must be"): CMG(scorer="cos")

def test_cli_fit_frozen_refuses_from_scratch_flags(folder, tmp_path):
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", "cmg-frozen", "--rid-input", "matching")
    assert r.returncode == 2 and "--rid-input: cmg-frozen does not use it; it is a setting of the from-scratch feature source" in r.stderr and not (tmp_path / "m.cmg").exists()

def test_cli_openclipart_preset_bad_task_is_one_line():
    from conftest import FIXTURES
    base = ("evaluate", "--data", FIXTURES / "openclipart", "--preset", "openclipart", "--methods", "pretrained-knn", "-q")
    r = cmg(*base)                                   # the fixture's dog_01.png has no SVG: with on_error=raise, that is the error
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "dog_01.png has no SVG" in r.stderr, r.stderr
    for extra, msg in ((), "task 'living': categories plants, people have no images"), (("--task", "nope"), "unknown task 'nope'"):
        r = cmg(*base, "--on-error", "skip", *extra)
        errors = [l for l in r.stderr.splitlines() if l.startswith("cmg: error:")]
        assert r.returncode == 2 and len(errors) == 1 and msg in errors[0] and "Traceback" not in r.stderr, r.stderr


# --- issue 22: CMER's candidate views (whole image, M masks, windows to keep) in the frozen family ---

def test_frozen_family_honours_n_regions(split, tmp_path):
    "M reaches the frozen family (it was dropped before): 1 + M + 4 candidates (2 x 2 windows), a RID over all of them, and the saved settings."
    det = make_detector("cmg-frozen", CMGConfig(text_encoder="tfidf", n_regions=9), seed=0)
    assert det.config.n_regions == 9
    det.config.__dict__.update(FAST)
    det.fit(split.train, split.valid, progress=False)
    assert len(det.candidates()) == 1 + 9 + 4 and det.rid_.prior.shape == (14,) and det.info_["n_candidates"] == 14
    back = Detector.load(det.save(tmp_path / "m9.cmg"))
    assert back.config.n_regions == 9 and back.config.cmer_candidates == "windows"
    np.testing.assert_array_equal(back.anomaly_score(split.test), det.anomaly_score(split.test))   # save -> load: identical scores, new RID
    np.testing.assert_array_equal(back.choices(split.test), det.choices(split.test))

def test_cli_n_regions_reaches_the_frozen_model(folder, tmp_path):
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", "ssd+cmer-frozen",
            "--n-regions", "9", "--cmer-candidates", "masks", "--text-encoder", "tfidf", "-q")
    assert r.returncode == 0, r.stderr
    cfg = Detector.load(tmp_path / "m.cmg").config
    assert (cfg.n_regions, cfg.cmer_candidates) == (9, "masks")

def test_from_scratch_cmg_runs_cmer_windows(split, tmp_path):
    "CMER exists once: the from-scratch CMG takes the windows too; its RID picks among 1 + M + 4 views; save -> load and ONNX (1e-4) agree."
    ort = pytest.importorskip("onnxruntime")
    from cmg_nb.pipeline import CMG
    from cmg_nb.export import export_onnx
    from cmg_nb.inputs import as_image_tensor
    cfg = CMGConfig(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32,
                    cmer_candidates="windows", window_grid=2, whole_margin=0.0)
    det = CMG(cfg).fit(split.train, split.valid, progress=False)
    assert det.rid_.m == 9 and list(det.candidates().kind[:2]) == ["whole", "mask"] and det.info_["chance"] == 1 / 9
    assert det.info_["train_labels"].max() < 9
    back = Detector.load(det.save(tmp_path / "w.cmg"))
    np.testing.assert_array_equal(back.anomaly_score(split.test), det.anomaly_score(split.test))
    x = as_image_tensor(split.test, 16)[:8]
    got = ort.InferenceSession(str(export_onnx(det, tmp_path / "w.onnx"))).run(None, {"images": x.numpy()})[0]
    np.testing.assert_allclose(got, det.anomaly_score(x), rtol=1e-4, atol=1e-4)

def test_old_pixel_rid_model_files_are_refused(split, tmp_path):
    "A frozen model file from before the view RID (no `candidates`, today `cmer_candidates`, in its settings) is refused with a one-line reason."
    det = frozen_method("ssd+cmer-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, progress=False)
    st = det.state_dict(); cfg = json.loads(st["config"]); cfg.pop("cmer_candidates"); st["config"] = json.dumps(cfg)
    with pytest.raises(ValueError, match="older cmg_nb whose RID read pooled pixels"): FrozenCMG.from_state_dict(st)

def test_model_files_saved_with_the_old_frozen_settings_load(split, tmp_path):
    "A frozen model file from before one settings object (FrozenConfig: `k`, `head_dim`, `candidates`, no `features`) loads, with identical scores."
    import torch
    from cmg_nb.core import SOURCE_ONLY
    from cmg_nb.detector import settings_sha
    det = frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, progress=False)
    st = torch.load(det.save(tmp_path / "new.cmg"), weights_only=True)
    old_name = dict(knn_k="k", feat_dim="head_dim", cmer_candidates="candidates")
    cfg = {old_name.get(k, k): v for k, v in json.loads(st["config"]).items() if k != "features" and k not in SOURCE_ONLY["scratch"]}
    assert len(cfg) == 33 and {"k", "head_dim", "candidates"} <= set(cfg)          # FrozenConfig's 33 fields, as files of stop 32 hold them
    st["config"] = json.dumps(cfg); st["settings_sha"] = settings_sha(st)
    torch.save(st, tmp_path / "old.cmg")
    back = Detector.load(tmp_path / "old.cmg")
    assert type(back) is FrozenCMG and back.config == det.config
    np.testing.assert_array_equal(back.anomaly_score(split.test), det.anomaly_score(split.test))

@pytest.mark.parametrize("method,flag,value,msg", [("pretrained-knn", "--n-regions", "9", "has no masks or views"),
                                                   ("ssd+cmle-frozen", "--cmer-candidates", "masks", "has no CMER")])
def test_cli_refuses_a_flag_the_frozen_method_cannot_use(folder, tmp_path, method, flag, value, msg):
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--method", method, flag, value)
    assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1 and not (tmp_path / "m.cmg").exists(), r.stderr

@pytest.mark.parametrize("name", ["pretrained-knn", "pretrained-maha"])
def test_caption_free_fit_plain_images(split, name):
    "The caption-free methods fit on a plain uint8 array (issue 24: 'fit needs CaptionedImages' even for them)."
    x = split.train.to_array(32)
    assert x.dtype == np.uint8 and x.ndim == 4
    det = frozen_method(name, SMALL, seed=0).fit(x, progress=False)
    a = det.anomaly_score(split.test)
    assert a.shape == (len(split.test),) and np.isfinite(a).all()

def test_captioned_fit_plain_images_one_line(split):
    with pytest.raises(ValueError, match="cmg-frozen learns from captions: fit it on CaptionedImages"):
        frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train.to_array(32), progress=False)

def test_fit_logs_each_stage_when_redirected(split, capsys):
    "Output to a file (not a terminal): one line as each stage of fit starts and ends (issue 24: silent stages)."
    frozen_method("ssd-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, progress=True)
    out = capsys.readouterr().out
    for stage in ("views", "head"):
        assert f"[ssd-frozen] {stage}:" in out and f"[ssd-frozen] {stage}: done in" in out, out

def test_whole_margin_reaches_the_labels_and_the_saved_model(split, tmp_path):
    "`whole_margin`: 0 is Eq. 2's argmax of E1's cosines; a margin above every gap keeps the whole image everywhere; it is saved, and files from before it load as 0."
    cache = {}
    fit = lambda m: frozen_method("ssd+cmer-frozen", SMALL, seed=0, whole_margin=m, **FAST).fit(split.train, split.valid, stage_cache=cache, progress=False)
    plain, always = fit(0.0), fit(2.0)
    np.testing.assert_array_equal(plain.cmer_labels_, plain.cmer_scores_.argmax(1))                # cosines in [-1, 1]
    whole = (plain.candidates().kind == "whole").to_numpy()
    assert whole[0] and not always.cmer_labels_.any() and always.info_["cmer_whole_rate"] == 1.0
    np.testing.assert_array_equal(always.cmer_scores_, plain.cmer_scores_)                         # one E1: the margin acts after it
    back = Detector.load(always.save(tmp_path / "m.cmg"))
    assert back.config.whole_margin == 2.0
    st = plain.state_dict(); cfg = json.loads(st["config"]); cfg.pop("whole_margin"); st["config"] = json.dumps(cfg)
    assert FrozenCMG.from_state_dict(st).config.whole_margin == 0.0
    with pytest.raises(ValueError, match="whole_margin must be a finite number >= 0"): FrozenCMG(SMALL, whole_margin=-0.1)

def test_files_from_before_rid_from_load_as_view_rids(split, tmp_path):
    "Model files saved before `rid_from` existed hold a view RID; with the default now 'whole', they must still load as view RIDs and score alike."
    import torch
    from cmg_nb.detector import settings_sha
    from cmg_nb.frozen import ViewRID, WholeRID
    det = frozen_method("ssd+cmer-frozen", SMALL, seed=0, rid_from="views", **FAST).fit(split.train, split.valid, progress=False)
    f = det.save(tmp_path / "old.cmg"); st = torch.load(f, weights_only=True)
    cfg = json.loads(st["config"]); cfg.pop("rid_from"); st["config"] = json.dumps(cfg)
    st["settings_sha"] = settings_sha(st); torch.save(st, f)                                    # as an older cmg_nb wrote it
    old = Detector.load(f)
    assert old.config.rid_from == "views" and type(old.rid_) is ViewRID and FrozenCMG(SMALL).config.rid_from == "whole"
    np.testing.assert_array_equal(old.anomaly_score(split.test), det.anomaly_score(split.test))
    assert type(frozen_method("cmg-frozen", SMALL, seed=0, **FAST).fit(split.train, split.valid, progress=False).rid_) is WholeRID

def test_caption_rid_chooses_by_the_training_captions_and_survives_save_load_and_onnx(split, tmp_path):
    "issue 22: `rid_from='captions'`: the choice is Eq. 2 (with the margin) of each view's best cosine with a distinct training caption; save -> load and ONNX give the same scores and choices."
    import torch, torch.nn.functional as F
    ort = pytest.importorskip("onnxruntime")
    from cmg_nb.frozen import CaptionRID
    from cmg_nb.masking import cmer_choice
    from cmg_nb.export import export_onnx
    det = frozen_method("ssd+cmer-frozen", SMALL, seed=0, rid_from="captions", whole_margin=0.02, **FAST).fit(split.train, split.valid, progress=False)
    assert type(det.rid_) is CaptionRID and len(det.rid_.bank) == len(set(map(tuple, split.train.captions)))   # each distinct caption once
    V = det._view_features(split.test.to_array(det.config.image_size))
    with torch.no_grad(): z = F.normalize(det.rid_.image(torch.as_tensor(V)), dim=-1).numpy()
    best = np.einsum("ncd,bd->ncb", z, det.rid_.bank.numpy()).max(-1)                               # numpy: each view's best caption
    whole = (det.candidates().kind == "whole").to_numpy()
    np.testing.assert_array_equal(det.choices(split.test), cmer_choice(best, whole, 0.02))
    back = Detector.load(det.save(tmp_path / "m.cmg"))
    assert type(back.rid_) is CaptionRID and back.config.rid_from == "captions"
    np.testing.assert_array_equal(back.anomaly_score(split.test), det.anomaly_score(split.test))
    x = split.test.to_array(det.config.image_size)[:8]
    got, choice = ort.InferenceSession(str(export_onnx(det, tmp_path / "m.onnx"))).run(None, {"images": x})
    np.testing.assert_allclose(got, det.anomaly_score(x), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(choice, det.choices(x))
    with pytest.raises(ValueError, match="rid_from must be one of whole, views, captions"): FrozenCMG(SMALL, rid_from="caption")
