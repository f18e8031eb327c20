"""Fig. 9 with the frozen family's RID on the demo's data (issue 26), saved as CSV.

`rid_arm_study` with the frozen family's settings and its default arms `FROZEN_RID_ARMS` (the view RID trained for 1, 3 or 50
epochs; nothing else changes), `cmg-frozen`, seeds 0-2, on the demo's data (`make_scenes(1600, size=64, seed=1234)`,
circle/square/triangle/diamond normal, split with seed 0) and the settings `cmg demo` gives the frozen family
(`CMGConfig(**DEMO_CONFIG).for_source("frozen")`). One stage cache serves every arm and seed. Writes
`nbs/analysis_results/fig9_frozen_rid_arms.csv` (what the analysis page's `#| slow` cell writes). About 15 minutes
on 2 CPU cores, nearly all of it the backbone's passes over the 18 views of every image.

    python bench/fig9_frozen_rid_arms.py
"""
import time, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
from cmg_nb.core import CMGConfig
from cmg_nb.io import atomic_write
from cmg_nb.data import one_class_split
from cmg_nb.scenes import make_scenes
from cmg_nb.evaluation import DEMO_CONFIG
from cmg_nb.analysis import rid_arm_study

OUT = Path(__file__).resolve().parents[1] / "nbs" / "analysis_results" / "fig9_frozen_rid_arms.csv"

def main():
    t = time.time()
    cfg = CMGConfig(**DEMO_CONFIG).for_source("frozen")
    split = one_class_split(make_scenes(1600, size=64, seed=1234), ["circle", "square", "triangle", "diamond"], seed=0)
    print(cfg, split, sep="\n", flush=True)
    df = rid_arm_study(split, cfg, seeds=(0, 1, 2))
    atomic_write(OUT, lambda p: df.to_csv(p, index=False))
    print(df[["arm", "seed", "auroc", "rid_valid_accuracy", "chance", "cmer_majority", "fit_seconds"]].to_string())
    print(f"wrote {OUT} in {time.time() - t:.0f}s")

if __name__ == "__main__": main()
