"""`cmg fit` shows and applies the settings of the method it trains (issue 23): --help, --print-config, --config and
the saved model agree for every registered method, and a setting the method does not use is refused with its reason."""
import contextlib, io, json, re, warnings
from dataclasses import fields, asdict
import pytest
import yaml
from cmg_nb.cli import main, _parser, _settings_of, _build_detector, method_config, CMGError
from cmg_nb.core import CMGConfig, SOURCE_ONLY
from cmg_nb.evaluation import available_methods
from cmg_nb.settings import FROZEN_METHODS

from conftest import run_cmg as cmg

# One other valid value per setting (a test fails when a setting is added without one here, so none is left untested).
OTHER = dict(image_size=64, backbone="resnet34", feat_dim=64, cmer=False, n_regions=9, mask_mode="soft", soft_scale=0.2, tau=0.2,
             text_encoder="tfidf", match_epochs=3, rid_epochs=4, rid_input="matching", cmle=False, n_text_clusters=3,
             lle_neighbors=7, lle_reg=0.01, lam=0.5, epochs=2, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.8, beta2=0.9,
             weight_decay=0.001, lr_schedule="constant", simclr_tau=0.3, n_score_clusters=2, scorer="knn", knn_k=3, val_frac=0.2,
             target_fpr=0.1, seed=3, device="cpu", cmer_candidates="masks",
             # the frozen source's own
             window_grid=4, whole_margin=0.25, rid_from="views", hidden=256, max_steps=100)

def _args(method, *extra):
    return _parser(method).parse_args(["fit", "--data", "d", "--normal-groups", "a", "--out", "m", "--method", method, *map(str, extra)])

def _printed(method, *extra)->dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out): assert main(["fit", "--data", "d", "--normal-groups", "a", "--out", "m", "--method", method, "--print-config", *map(str, extra)]) == 0
    return yaml.safe_load(out.getvalue())

def _settings(det)->dict:
    "The settings a detector carries (and saves)."
    c = det.config
    return c.to_dict() if isinstance(c, CMGConfig) else asdict(c)

METHODS = available_methods()

def test_every_setting_has_another_value():
    assert {f.name for f in fields(CMGConfig)} - {"features", "head"} <= set(OTHER)

@pytest.mark.parametrize("method", METHODS)
def test_print_config_is_what_the_method_fits_with(method, tmp_path):
    "--print-config prints the settings of the detector that fit would train; --config reads them back unchanged."
    printed = _printed(method)
    d0, names = _settings_of(method)
    assert set(printed) == set(names)
    det = _build_detector(_args(method))                                      # what `cmg fit` fits (test_contract: saved -> loaded unchanged)
    assert {k: v for k, v in _settings(det).items() if k in names} == printed
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(printed))
    assert _printed(method, "--config", tmp_path / "c.yaml") == printed
    if method in FROZEN_METHODS: assert d0.features == "frozen" and printed["image_size"] == 96 and printed["backbone"] == "mobilenet_v2_imagenet"
    assert not set(printed) & set(SOURCE_ONLY["scratch" if d0.features == "frozen" else "frozen"])   # never the other source's settings

@pytest.mark.parametrize("method", METHODS)
def test_every_accepted_setting_changes_the_settings(method):
    "Each setting the method takes, given another value (by --set), reaches the settings of the detector fit would train."
    d0, names = _settings_of(method)
    base = _settings(_build_detector(_args(method)))
    for n in names:
        v = OTHER[n]
        if n == "backbone" and d0.features == "frozen": continue                   # one frozen backbone is installed
        if v == base[n]: v = dict(scorer="maha", knn_k=4, backbone="convnet", lr=0.02, image_size=48, cmer_candidates="windows")[n]   # the method's default already
        try: got = _settings(_build_detector(_args(method, "--set", f"{n}={json.dumps(v)}")))
        except (CMGError, ValueError) as e: pytest.fail(f"{method}: --set {n}={v!r} refused: {e}")
        assert got[n] == v and got[n] != base[n], (method, n)

@pytest.mark.parametrize("method,flag,value,why", [
    ("cmg-frozen", "--rid-input", "matching", "it is a setting of the from-scratch feature source"),
    ("cmg-frozen", "--optimizer", "sgd", "it is a setting of the from-scratch feature source"),
    ("ssd-frozen", "--text-encoder", "tfidf", "it uses no captions"),
    ("ssd+cmle-frozen", "--whole-margin", "0.1", "it has no CMER"),
    ("ssd+cmer-frozen", "--lam", "0.5", "it has no CMLE"),
    ("pretrained-knn", "--epochs", "3", "it has no masks or views"),
    ("pretrained-maha", "--scorer", "knn", "the method's name fixes it"),
    ("ssd", "--cmer", None, "ssd sets it itself (cmer=False)"),
    ("cmg-pretrained", "--backbone", "resnet18", "cmg-pretrained sets it itself (backbone='mobilenet_v2_imagenet')"),
    ("cmg-pretrained", "--lr", "0.01", "cmg-pretrained sets it itself (lr=0.0001)"),
    ("cmg", "--rid-from", "views", "cmg does not use it; it is a setting of the frozen feature source"),
])
def test_a_setting_the_method_does_not_use_is_refused_with_why(method, flag, value, why, tmp_path):
    why = re.escape(why)
    with pytest.raises(CMGError, match=why): _build_detector(_args(method, flag, *([value] if value else [])))
    (tmp_path / "c.yaml").write_text(f"{flag[2:].replace('-', '_')}: {value or 'true'}\n")            # from a file too
    with pytest.raises(CMGError, match=why): _build_detector(_args(method, "--config", tmp_path / "c.yaml"))

def test_fit_without_method_parses_every_flag_and_checks_it_against_the_default():
    "Without --method the default is known only after parsing (a GPU?): every flag parses, and the default method then takes or refuses it."
    from cmg_nb.cli import default_method
    a = _parser(None).parse_args(["fit", "--data", "d", "--normal-groups", "a", "--out", "m", "--rid-from", "views"])
    assert a.method is None and a.rid_from == "views"
    a.method = default_method()
    if a.method == "cmg-frozen": assert _build_detector(a).config.rid_from == "views"
    else:
        with pytest.raises(CMGError, match="setting of the frozen feature source"): _build_detector(a)

def test_help_shows_the_methods_own_settings():
    "`cmg fit --method M --help`: M's settings with M's defaults; the from-scratch flags are not listed for a frozen method."
    for method, shown, hidden in (("cmg-frozen", ["--image-size IMAGE_SIZE", "(default: 96)", "--whole-margin", "(default: 0.5)"], ["--rid-input", "--optimizer"]),
                                  ("pretrained-knn", ["--knn-k", "(default: 5)"], ["--epochs", "--n-regions", "--scorer"]),
                                  ("cmg", ["--rid-input", "(default: 32)", "--whole-margin"], ["--rid-from"])):
        h = _parser(method)._subparsers._group_actions[0].choices["fit"].format_help()
        assert all(s in h for s in shown) and not any(s in h for s in hidden), (method, h)
    h = _parser(None)._subparsers._group_actions[0].choices["fit"].format_help()                  # no --method: the CPU default's, said so
    assert "settings of cmg-frozen (CMGConfig, features='frozen'" in " ".join(h.split()) and "cmg on a GPU" in h and "(default: 96)" in h

def test_cli_print_config_matches_the_saved_model(tmp_path, scene_folder):
    "The real command: what --print-config prints is what the saved model says it was fitted with."
    (tmp_path / "scenes").mkdir(); folder = scene_folder(tmp_path / "scenes", 60)
    small = ["--text-encoder", "tfidf", "--epochs", "2", "--match-epochs", "1", "--rid-epochs", "1", "--window-grid", "2", "--whole-margin", "0.3"]
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "--print-config", *small)
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stdout)
    r = cmg("fit", "--data", folder, "--normal-groups", "circle", "--out", tmp_path / "m.cmg", "-q", *small)
    assert r.returncode == 0, r.stderr
    from cmg_nb.detector import Detector
    saved = asdict(Detector.load(tmp_path / "m.cmg").config)
    assert {k: saved[k] for k in printed} == printed and printed["epochs"] == 2 and printed["whole_margin"] == 0.3

def _reads_of(name:str, split)->set:
    "The `CMGConfig` settings that `name`'s fit (valid=None: the held-out share is drawn) and scoring read, recorded field by field."
    seen, mute = set(), [0]
    names = {f.name for f in fields(CMGConfig)}
    class Reads(CMGConfig):
        def __getattribute__(self, n):
            if n in names and not mute[0]: seen.add(n)
            return object.__getattribute__(self, n)
    def muted(f):                                                             # whole-config copies, checks and dumps read every field
        def g(*a, **k):
            mute[0] += 1
            try: return f(*a, **k)
            finally: mute[0] -= 1
        return g
    for m in ("to_dict", "replace", "validate", "__eq__", "__repr__", "__post_init__"): setattr(Reads, m, muted(getattr(CMGConfig, m)))
    mute[0] += 1
    det = make_detector(name, CMGConfig(image_size=16, backbone="convnet", epochs=1, match_epochs=1, text_encoder="tfidf", batch_size=16), seed=1)
    det.config = Reads(**det.config.to_dict()); mute[0] -= 1
    det.fit(split.train, None, progress=False).anomaly_score(split.test)
    return seen

from cmg_nb.evaluation import make_detector
DECLARED = [m for m in METHODS if make_detector(m, CMGConfig()).settings_used is not None]

@pytest.mark.parametrize("method", DECLARED)
def test_declared_settings_are_the_settings_read(method):
    """A method that declares `settings_used` reads exactly those settings in fit and scoring (measured), so `cmg fit` refuses no setting it
    reads and takes none it ignores (pretrained-maha-32's --backbone, zero-shot's --scorer, SHE's --text-encoder were taken and ignored)."""
    from cmg_nb.data import one_class_split
    from cmg_nb.scenes import make_scenes
    split = one_class_split(make_scenes(64, size=32, seed=21, shapes=("circle", "square", "star", "cross")), ["circle", "square"], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _reads_of(method, split) == set(make_detector(method, CMGConfig()).settings_used)
    d0, names = _settings_of(method)
    assert set(names) <= set(make_detector(method, CMGConfig()).settings_used)

@pytest.mark.parametrize("method,flag,value", [("pretrained-maha-32", "--backbone", "resnet18"), ("she", "--text-encoder", "tfidf"),
                                               ("zero-shot", "--scorer", "knn"), ("cmda", "--n-regions", "9"), ("she", "--lam", "0.5")])
def test_a_setting_the_method_never_reads_is_refused(method, flag, value):
    with pytest.raises(CMGError, match=f"^{flag}: {re.escape(method)} does not use it; its settings are "): _build_detector(_args(method, flag, value))

def test_evaluate_takes_the_frozen_source_when_every_method_is_frozen(tmp_path):
    "`cmg evaluate`: one set of settings for every method; frozen ones when all methods are, and a frozen-only flag refused in one line otherwise."
    base = ("evaluate", "--data", tmp_path, "--normal-groups", "a", "--print-config", "--rid-from", "views", "--lr", "0.01")
    r = cmg(*base, "--methods", "cmg-frozen,pretrained-knn")
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stdout)
    assert (printed["features"], printed["rid_from"], printed["lr"], printed["image_size"]) == ("frozen", "views", 0.01, 96)
    r = cmg(*base, "--methods", "cmg,cmg-frozen")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "rid_from is a setting of features='frozen'" in r.stderr, r.stderr
    r = cmg("evaluate", "--data", tmp_path, "--normal-groups", "a", "--print-config", "--lr", "0.01", "--n-regions", "9", "--methods", "cmg,cmg-frozen")
    assert r.returncode == 0 and r.stderr.strip() == ("note: --lr reach the from-scratch methods only; cmg-frozen keep the frozen source's own "
                                                      "(evaluate them on their own to set it)"), r.stderr   # M is shared: not named
