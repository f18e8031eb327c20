"""Data-parallel training with 2 CPU processes (torchrun, gloo) against one process; `cmg fit` under torchrun;
the frozen family's backbone passes sharded over 2 processes; streaming scores of a folder in chunks.
The workers are tests/_ddp_train.py and tests/_ddp_frozen.py."""
import os, sys, json, socket, subprocess, shutil, time, contextlib
from pathlib import Path
import numpy as np
import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _ddp_train import train

TOL = 2e-4   # max |w_2proc - w_1proc|; measured 1.3e-6 (E1), 2.5e-7 (RID), 1.0e-5 (E2): float summation order + Adam, see 02a_training

def free_port()->int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def torchrun(*args, nproc=2, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    if Path("/sys/class/net/lo").exists(): env.setdefault("GLOO_SOCKET_IFNAME", "lo")   # one machine: gloo over loopback
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

PARTS = {"m.": "E1 (matching)", "r.": "RID head", "w.": "E2 (encoder)"}

def max_diff(a, b, prefix:str)->float:
    "Largest absolute difference of the weights whose names start with `prefix` (one of `PARTS`)."
    ks = [k for k in a if k.startswith(prefix)]
    assert ks and set(ks) == {k for k in b if k.startswith(prefix)}
    return max(float(np.abs(a[k] - b[k]).max()) for k in ks)

@pytest.fixture(scope="module")
def two_process(tmp_path_factory):
    "Weights and losses of the tiny trainings run by 2 torchrun processes with 32 images each (global batch 64)."
    out = tmp_path_factory.mktemp("ddp") / "ddp.npz"
    t = time.time()
    r = torchrun(HERE / "_ddp_train.py", out, 0, 32)
    assert r.returncode == 0, r.stderr[-3000:]
    res = dict(np.load(out)); res["wall"] = time.time() - t
    return res

def test_two_processes_match_one(two_process):
    "Same global batch (2 x 32 vs 1 x 64): E1, RID and E2 weights within TOL, same losses; another seed is far outside TOL."
    assert int(two_process["world"]) == 2
    one = train(seed=0, bs=64)
    d = {p: max_diff(two_process, one, p) for p in PARTS}
    print("\n2 processes vs 1, max |dw|: " + ", ".join(f"{PARTS[p]} {v:.1e}" for p, v in d.items()) +
          f"; 2-process worker {float(two_process['seconds']):.1f}s (wall with start-up {two_process['wall']:.1f}s)")
    assert max(d.values()) < TOL
    for k in ("losses", "m_losses"): np.testing.assert_allclose(two_process[k], one[k], rtol=1e-5)
    other = train(seed=1, bs=64)                           # the check can fail: another seed lies far outside TOL
    assert all(max_diff(two_process, other, p) > 100 * TOL for p in PARTS)
    assert not np.allclose(other["losses"], one["losses"], rtol=1e-5)

@pytest.fixture(scope="module")
def folder(tmp_path_factory, scene_folder): return scene_folder(tmp_path_factory.mktemp("scenes"), 90)

FLAGS = ["--image-size", "16", "--backbone", "convnet", "--epochs", "1", "--match-epochs", "1", "--rid-epochs", "1",
         "--text-encoder", "tfidf", "--batch-size", "16", "-q"]

@pytest.mark.once   # torch.distributed and fastai's DDP: `test_two_processes_match_one` runs them in both environments
def test_cmg_fit_under_torchrun_writes_one_loadable_model(folder, tmp_path):
    from cmg_nb.pipeline import CMG
    out = tmp_path / "out" / "m.cmg"
    exe = shutil.which("cmg") or str(Path(sys.executable).parent / "cmg")
    r = torchrun("--no-python", exe, "fit", "--data", folder, "--normal-groups", "circle,square", "--out", out,
                 "--method", "cmg", "--checkpoint", tmp_path / "ck", *FLAGS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("saved cmg detector") == 1, r.stdout          # one process reports (and writes)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.cmg"]      # one file, no temporary left behind
    assert not [p for p in (tmp_path / "ck").iterdir() if ".tmp" in p.name]
    det = CMG.load(out)
    ims = sorted((folder / "img").glob("*.png"))[:5]
    s = det.anomaly_score(ims)
    assert s.shape == (5,) and np.isfinite(s).all()
    # one process resumes from the checkpoint rank 0 wrote (stage keys are the same in every process): same detector
    r = subprocess.run([exe, "fit", "--data", str(folder), "--normal-groups", "circle,square", "--out", str(tmp_path / "m2.cmg"),
                        "--method", "cmg", "--checkpoint", str(tmp_path / "ck"), *FLAGS], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    np.testing.assert_allclose(CMG.load(tmp_path / "m2.cmg").anomaly_score(ims), s, rtol=1e-6)

def test_streamed_folder_scores_equal_one_batch(folder, tmp_path):
    "A folder of N images scored in chunks smaller than N gives the scores of one big batch, in the same order."
    from cmg_nb.pipeline import CMG
    from cmg_nb.loaders import load_folder
    from cmg_nb.cli import main
    det = CMG(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf",
              batch_size=16).fit(load_folder(folder).subset(np.arange(40), "train"), progress=False)
    paths = sorted((folder / "img").glob("*.png"))
    one = det.anomaly_score(paths, chunk=len(paths))
    np.testing.assert_allclose(det.anomaly_score(paths, chunk=7), one, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(det.anomaly_score(paths[::-1], chunk=7), one[::-1], rtol=1e-6, atol=1e-9)
    det.save(tmp_path / "m.cmg")
    # `cmg score FOLDER` scores every image file of the folder, streamed
    import io, contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): assert main(["score", "--model", str(tmp_path / "m.cmg"), "--json", str(folder / "img")]) == 0
    res = json.loads(buf.getvalue())["results"]
    got = {Path(r["path"]).name: r["anomaly_score"] for r in res}
    assert len(got) == len(paths)
    np.testing.assert_allclose([got[p.name] for p in paths], one, rtol=1e-6, atol=1e-9)
    (tmp_path / "empty").mkdir()
    assert main(["score", "--model", str(tmp_path / "m.cmg"), str(tmp_path / "empty")]) == 2


# --- the frozen family under torchrun: every backbone pass sharded over the processes, gathered in order ---

from _ddp_frozen import fit as frozen_fit, split as frozen_split, SETTINGS as FROZEN

FEAT_TOL = 1e-5    # max |f_2proc - f_1proc| of the backbone features; measured 0 for the 69 training images and 9.2e-6 for
                   # the 23 validation images (mobilenet's CPU kernels round a batch of 23 differently from batches of 11 and 12)
SCORE_TOL = 1e-6   # max |s_2proc - s_1proc| of the anomaly scores; measured 0.0 (worker test and `cmg fit`): E1, the RID and E2
                   # train on identical training features with the same seed in every process

@contextlib.contextmanager
def one_thread():
    "Torch on one thread, as the torchrun workers (OMP_NUM_THREADS=1), so that the kernels round alike."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    try: yield
    finally: torch.set_num_threads(n)

def share(r:int, n:int, w:int=2)->int: return (r + 1) * n // w - r * n // w     # rows of process r (`shard_range`)

@pytest.fixture(scope="module")
def frozen_two(tmp_path_factory):
    "What a `cmg-frozen` fit run by 2 torchrun processes gathered, trained and scored (tests/_ddp_frozen.py), and its folder."
    out = tmp_path_factory.mktemp("ddp_frozen") / "two.npz"
    t = time.time()
    r = torchrun(HERE / "_ddp_frozen.py", out)
    assert r.returncode == 0, r.stderr[-3000:]
    res = dict(np.load(out)); res["wall"] = time.time() - t
    return res, out.parent

@pytest.mark.once   # torch.distributed and fastai's DDP: `test_two_processes_match_one` runs them in both environments
def test_frozen_two_processes_shard_the_backbone_and_match_one(frozen_two):
    "Each process encodes its half of every backbone pass; the gathered features, E1/RID/E2 and the scores equal one process's."
    from cmg_nb.frozen import frozen_backbone, encode
    from cmg_nb.detector import Detector
    two, folder = frozen_two
    assert int(two["world"]) == 2
    with one_thread(): one = frozen_fit()
    # the mechanism: process r ran the backbone on its contiguous share of the training and of the validation images only
    n_tr, n_va = int(one["n_train"]), int(one["n_valid"])
    per_image = sum(len(v) for k, v in one.items() if k.startswith("f.")) // (n_tr + n_va)    # whole image + other candidate views
    assert per_image == 9 and int(one["encoded"]) == (n_tr + n_va) * per_image
    np.testing.assert_array_equal(two["encoded_per_rank"], [(share(r, n_tr) + share(r, n_va)) * per_image for r in (0, 1)])
    assert two["encoded_per_rank"].sum() == one["encoded"] and n_tr % 2 == 1                   # uneven shares (34 + 35)
    # gathered in the original order: exactly the two shares' features, one after the other
    sp, (net, _) = frozen_split(), frozen_backbone()
    for a, n in ((sp.train, n_tr), (sp.valid, n_va)):
        x = a.to_array(FROZEN["image_size"])
        with one_thread(): halves = [encode(net, x[:n // 2]), encode(net, x[n // 2:])]
        np.testing.assert_array_equal(two[f"f.plain.{n}"], np.concatenate(halves))
        assert not np.allclose(two[f"f.plain.{n}"], np.concatenate(halves[::-1]))               # the order matters
    fd = {k: float(np.abs(two[k] - one[k]).max()) for k in one if k.startswith("f.")}
    wd = max(float(np.abs(two[k] - one[k]).max()) for k in one if k[:2] in ("h.", "r."))
    sd = float(np.abs(two["scores"] - one["scores"]).max())
    print(f"\nfrozen, 2 processes vs 1: features max |df| {fd}, E2/RID weights {wd:.1e}, scores {sd:.1e}; "
          f"2-process worker {float(two['seconds']):.1f}s (wall with start-up {two['wall']:.1f}s)")
    assert max(fd.values()) < FEAT_TOL and sd < SCORE_TOL and wd < SCORE_TOL
    # sharded_map with uneven shares, and with a process that has no rows (1 row over 2 processes)
    np.testing.assert_array_equal(two["squares5"], np.arange(5) ** 2); np.testing.assert_array_equal(two["squares1"], [0])
    # rank 0 alone wrote the model: it loads and scores as the fit did
    assert sorted(p.name for p in folder.iterdir()) == ["two.cmg", "two.npz"]
    with one_thread(): s = Detector.load(folder / "two.cmg").anomaly_score(sp.test)        # the kernels round with the thread count (measured 1e-7 on 2)
    np.testing.assert_allclose(s, two["scores"], rtol=0, atol=SCORE_TOL)

FROZEN_FLAGS = ["--method", "cmg-frozen", "--image-size", "32", "--epochs", "3", "--match-epochs", "2", "--rid-epochs", "2",
                "--window-grid", "2", "--text-encoder", "tfidf", "--batch-size", "32", "-q"]

@pytest.mark.once   # torch.distributed and fastai's DDP: `test_two_processes_match_one` runs them in both environments
def test_cmg_fit_frozen_under_torchrun_equals_one_process(folder, tmp_path):
    "`cmg fit --method cmg-frozen` under torchrun (2 processes): one model file, rank 0's backbone share, the scores of a fit alone."
    from cmg_nb.detector import Detector
    from conftest import run_cmg
    exe = shutil.which("cmg") or str(Path(sys.executable).parent / "cmg")
    out = tmp_path / "out" / "m.cmg"
    args = ["fit", "--data", folder, "--normal-groups", "circle,square", *FROZEN_FLAGS]
    r = torchrun("--no-python", exe, *args, "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("saved cmg-frozen detector") == 1, r.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.cmg"]
    r = run_cmg(*args, "--out", tmp_path / "one.cmg", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    two, one = Detector.load(out), Detector.load(tmp_path / "one.cmg")
    n = one.info_["n_train"] + one.info_["n_valid"]
    assert two.info_["encoded"] == (share(0, one.info_["n_train"]) + share(0, one.info_["n_valid"])) * one.info_["encoded"] // n   # rank 0's share
    ims = sorted((folder / "img").glob("*.png"))[::3]                 # 30 of the 90 images, normal and anomalous
    np.testing.assert_allclose(two.anomaly_score(ims), one.anomaly_score(ims), rtol=0, atol=SCORE_TOL)
    assert two.offset_ == pytest.approx(one.offset_, abs=SCORE_TOL)
