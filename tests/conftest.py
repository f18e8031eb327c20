import os, shutil
from pathlib import Path
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
FIXTURES = Path(__file__).parent / "fixtures"

def pytest_configure(config):
    config.addinivalue_line("markers", "once: run in the pinned environment only; the newest-dependencies run (`tools/dev.sh test`, "
                            "`-m 'not once'`) covers the same dependency path with a cheaper test")
ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture
def fixture_copy(tmp_path):
    "Copy a fixture folder into tmp_path so a test may break it."
    def _copy(name):
        dst = tmp_path / name
        shutil.copytree(FIXTURES / name, dst)
        return dst
    return _copy

def _write_scene_folder(root:Path, n:int, seed:int=5, shapes=("circle", "square", "cross"))->Path:
    "A folder data set in the documented format: `img/*.png` + captions.csv (two caption rows per image)."
    from PIL import Image
    from cmg_nb.scenes import make_scenes
    d = make_scenes(n, size=24, seed=seed, shapes=shapes)
    (root / "img").mkdir()
    rows = ["image,caption,group"]
    for i in range(len(d)):
        Image.fromarray(d.images[i]).save(root / f"img/{i}.png")
        rows += [f'img/{i}.png,"{c}",{d.groups[i]}' for c in d.captions[i][:2]]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    return root

@pytest.fixture(scope="session")
def scene_folder():
    "`scene_folder(root, n)` writes a folder data set of `n` procedural scenes into `root`."
    return _write_scene_folder

def run_cmg(*args, timeout=900):
    "Run the installed `cmg` command; returns the CompletedProcess (stdout, stderr, returncode)."
    import subprocess, sys
    exe = shutil.which("cmg") or str(Path(sys.executable).parent / "cmg")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)
