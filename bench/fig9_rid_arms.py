"""Fig. 9's RID arms on the scenes (the setting of `nbs/15_analysis.ipynb`'s full-size runs), saved as CSV.

`rid_arm_study` with its default arms (hard masks with a 1-epoch RID and with the full `rid_epochs`, soft masks with
the full RID), CMG, seeds 0-2, on `make_scenes(1200, size=64, seed=1234)` split with seed 0 and the analysis page's
`FULL` settings (`DEMO_CONFIG`, MiniLM, the RID on the matching model's features, M = 4). Writes
`nbs/analysis_results/fig9_rid_arms.csv` (what the page's `#| slow` cell writes). About 8 minutes on 2 idle cores.

    python bench/fig9_rid_arms.py
"""
import warnings
from pathlib import Path
warnings.filterwarnings("ignore")
from cmg_nb.core import CMGConfig
from cmg_nb.io import atomic_write
from cmg_nb.data import one_class_split
from cmg_nb.scenes import make_scenes
from cmg_nb.evaluation import DEMO_CONFIG
from cmg_nb.analysis import rid_arm_study

OUT = Path(__file__).resolve().parents[1] / "nbs" / "analysis_results" / "fig9_rid_arms.csv"

def main():
    FULL = CMGConfig(**{**DEMO_CONFIG, "text_encoder": "minilm", "rid_input": "matching", "n_regions": 4})
    split = one_class_split(make_scenes(1200, size=64, seed=1234), ["circle", "square", "triangle", "diamond"], seed=0)
    df = rid_arm_study(split, FULL, seeds=(0, 1, 2))
    atomic_write(OUT, lambda t: df.to_csv(t, index=False))
    print(df[["arm", "seed", "auroc", "rid_valid_accuracy"]].to_string()); print(f"wrote {OUT}")

if __name__ == "__main__": main()
