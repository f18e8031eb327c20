"""Which input should the RID read? Prints, for the demo's matching model and CMER labels, each RID input's
accuracy against the labels (normal validation data), the share of the object its mask removes on the test
scenes (generator masks; never used for training), and its selection throughput. Figures only, no test.

    python bench/rid_inputs.py [--n-regions M]     (default: the demo's M)
"""
import argparse, time, copy, warnings; warnings.filterwarnings("ignore")
import torch, torch.nn as nn
from cmg_nb.core import CMGConfig, set_seed
from cmg_nb.data import one_class_split
from cmg_nb.scenes import make_scenes
from cmg_nb.pipeline import as_image_tensor
from cmg_nb.evaluation import DEMO_CONFIG
from cmg_nb.text import get_text_encoder, embed_captions
from cmg_nb.contrastive import train_matching_model
from cmg_nb.masking import best_masks, mask_overlap_report
from cmg_nb.rid import train_rid, rid_accuracy, rid_select, PooledPixels

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-regions", type=int, default=DEMO_CONFIG["n_regions"], help="M, the number of grid regions")
    cfg = CMGConfig(**{**DEMO_CONFIG, "n_regions": ap.parse_args().n_regions}).validate()
    sp = one_class_split(make_scenes(1600, 64, seed=1234), ["circle", "square", "triangle", "diamond"], seed=0)
    x, xv, xt = [as_image_tensor(d, cfg.image_size) for d in (sp.train, sp.valid, sp.test)]
    enc = get_text_encoder(cfg.text_encoder)
    T, Tv = [torch.from_numpy(embed_captions(d.captions, enc)) for d in (sp.train, sp.valid)]
    m = train_matching_model(x, T, cfg, valid=(xv, Tv), progress=False)
    l, lv = best_masks(m, x, T, cfg), best_masks(m, xv, Tv, cfg)
    om = sp.test.masks_array(cfg.image_size)
    inputs = {"matching features, 32 px copies": m,
              "matching features, 16 px copies": (nn.Sequential(nn.AvgPool2d(2), copy.deepcopy(m.backbone)), m.backbone_dim),
              "pooled pixels 16x16": "pixels", "pooled pixels 8x8": (PooledPixels(8), PooledPixels(8).dim(cfg.image_size))}
    for name, feats in inputs.items():
        set_seed(cfg.seed)
        r = train_rid(x, l, cfg, valid=(xv, lv), features=feats, progress=False)
        ts = []
        for _ in range(3):
            t = time.perf_counter(); sel = rid_select(r, xt, cfg, bs=256); ts.append(time.perf_counter() - t)
        ov = mask_overlap_report(sel, om, cfg.n_regions)
        print(f"{name:34s} acc vs l {rid_accuracy(r, xv, lv, cfg):.3f}  object removed {ov['object_removed']:.3f} "
              f"(random {ov['object_removed_random']:.3f}, best {ov['object_removed_best']:.3f})  {len(xt)/min(ts):.0f} img/s", flush=True)

if __name__ == "__main__": main()
