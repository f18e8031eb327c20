"""How much the demo's CMG - SSD margin depends on the draw of scenes and split (a measurement; nothing is chosen from it).

Prints SSD and CMG test AUROC per seed at the demo's settings for other scene draws and one-class splits; the demo's
settings stay as they are.

    python bench/demo_draws.py                    # the four draws of the evaluation notebook (about 10 min on 2 cores)
    python bench/demo_draws.py --draws 7:0 99:2   # scenes seed : split seed
"""
import argparse, warnings; warnings.filterwarnings("ignore")
import numpy as np
from cmg_nb.core import CMGConfig
from cmg_nb.data import one_class_split
from cmg_nb.scenes import make_scenes
from cmg_nb.evaluation import DEMO_CONFIG, run_methods, results_json

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", nargs="+", default=["1234:0", "1234:1", "7:0", "99:2"], help="scenes_seed:split_seed pairs (1234:0 is the demo's)")
    ap.add_argument("--n-images", type=int, default=1600)
    args = ap.parse_args()
    cfg = CMGConfig(**DEMO_CONFIG)
    for draw in args.draws:
        scenes_seed, split_seed = (int(v) for v in draw.split(":"))
        sp = one_class_split(make_scenes(args.n_images, 64, seed=scenes_seed), ["circle", "square", "triangle", "diamond"], seed=split_seed)
        r = results_json(run_methods(sp, ("ssd", "cmg"), (0, 1, 2), cfg, progress=False)[0])
        a, b = 100 * np.array(r["ssd"]["auroc"]), 100 * np.array(r["cmg"]["auroc"])
        print(f"scenes {scenes_seed} split {split_seed}: SSD {a.round(1).tolist()} CMG {b.round(1).tolist()}  CMG - SSD {(b - a).mean():+.1f} "
              f"(per seed {(b - a).round(1).tolist()}); seed std SSD {a.std(ddof=1):.1f}, CMG {b.std(ddof=1):.1f}", flush=True)

if __name__ == "__main__": main()
