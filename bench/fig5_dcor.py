"""Fig. 5 on the scenes: distance correlation among raw images, masked images, captions and noise, saved as JSON.

The setting of the `#| slow` cells of `nbs/06_rid.ipynb` (the CMER chain on 2,000 normal training scenes, four shapes,
32x32, MiniLM captions, a ResNet-18 matching model for 10 epochs, the RID on its frozen features for 15 epochs, seed 0),
then `dcor_matrix` (plain and bias-corrected) on 200 held-out normal scenes. Writes
`nbs/analysis_results/fig5_dcor.json`, which `06_rid` draws and quotes. About 5 minutes on 2 idle cores.

    python bench/fig5_dcor.py
"""
import os, json, time, datetime, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np
from cmg_nb.io import atomic_write_text
import torch
from cmg_nb.core import CMGConfig, set_seed
from cmg_nb.data import to_float_tensor
from cmg_nb.scenes import make_scenes
from cmg_nb.text import get_text_encoder, embed_captions
from cmg_nb.contrastive import train_matching_model
from cmg_nb.masking import best_masks, mask_images, dcor_matrix
from cmg_nb.rid import train_rid, rid_select, rid_accuracy, majority_rate

OUT = Path(os.environ.get("CMG_ANALYSIS", Path(__file__).resolve().parents[1] / "nbs" / "analysis_results")) / "fig5_dcor.json"

def main():
    t0 = time.time()
    NORMAL, SIZE, N_TRAIN, EPOCHS, N = ("circle", "square", "triangle", "star"), 32, 2000, 10, 200
    scfg = CMGConfig(image_size=SIZE, match_epochs=EPOCHS, rid_epochs=15, seed=0)
    if os.environ.get("CMG_SMOKE"): N_TRAIN, scfg = 300, scfg.replace(match_epochs=1, rid_epochs=1)
    M = scfg.n_regions
    set_seed(0)
    train, valid, held = [make_scenes(n, size=SIZE, seed=s, shapes=NORMAL) for n, s in ((N_TRAIN, 0), (200, 1), (300, 2))]
    enc = get_text_encoder("minilm")
    t_tr, t_va, t_ho = [embed_captions(d.captions, enc) for d in (train, valid, held)]
    x_tr, x_va, x_ho = [to_float_tensor(d.to_array(SIZE)) for d in (train, valid, held)]
    matcher = train_matching_model(x_tr, t_tr, scfg, valid=(x_va, t_va), progress=False)
    l_tr, l_va, l_ho = [best_masks(matcher, x, t, scfg) for x, t in ((x_tr, t_tr), (x_va, t_va), (x_ho, t_ho))]
    rid = train_rid(x_tr, l_tr, scfg, valid=(x_va, l_va), features=matcher, progress=False)
    sel = rid_select(rid, x_ho, scfg)
    rand = np.random.default_rng(0).integers(0, M, len(x_ho))
    om = held.masks_array(SIZE)
    rng = np.random.default_rng(0)
    sets = {"raw": x_ho[:N], "CMER mask": mask_images(x_ho[:N], l_ho[:N], scfg), "RID mask": mask_images(x_ho[:N], sel[:N], scfg),
            "random mask": mask_images(x_ho[:N], rand[:N], scfg), "object only": x_ho[:N] * torch.as_tensor(om[:N])[:, None],
            "captions": t_ho[:N], "white noise": rng.normal(0.5, 0.25, x_ho[:N].shape), "uniform noise": rng.uniform(0, 1, x_ho[:N].shape)}
    dc = {k: dcor_matrix(sets, bias_corrected=unb) for k, unb in (("plain", False), ("bias_corrected", True))}
    res = dict(names=list(sets), plain=dc["plain"].values.tolist(), bias_corrected=dc["bias_corrected"].values.tolist(),
               rid_accuracy=rid_accuracy(rid, x_ho, l_ho, scfg), chance=1 / M, majority_rate=majority_rate(l_tr, l_ho, M),
               n=N, settings=dict(normal=list(NORMAL), image_size=SIZE, n_train=N_TRAIN, match_epochs=scfg.match_epochs,
               rid_epochs=scfg.rid_epochs, n_regions=M, backbone=scfg.backbone, rid_features="frozen matching model",
               scenes_seeds=dict(train=0, valid=1, held_out=2), seed=0, noise_seed=0),
               paper=dict(raw_image_noise=0.21, masked_image_noise=0.17),
               seconds=round(time.time() - t0, 1), date=datetime.date.today().isoformat())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(res, indent=1) + "\n")
    print(f"wrote {OUT} in {res['seconds']:.0f} s")

if __name__ == "__main__": main()
