"""Do CMER's labels on images E1 was trained on look like its labels on images it has never seen? (issue 22: why the RID
does not cut at test time.) A diagnostic on the development tasks, not a choice of any setting:
- tasks: the six development tasks of `bench/cmer_margin.py`; split seed 0, fit seed 0;
- the fit: `ssd+cmer-frozen` at the family's defaults;
- measured: Eq. 2's labels (each image with its own caption, `whole_margin` 0.5) on the training images, which E1 was
  trained on, and on the normal validation images, which it was not; each against the object masks (object kept, box
  IoU, whole image chosen; ground truth for measuring only), with a random view and the best view for reference.

    python bench/cmer_label_gap.py

Writes `nbs/results/cmer_label_gap.json`.
"""
import json, time, datetime, warnings, sys
from pathlib import Path
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
from cmer_margin import splits

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "cmer_label_gap.json"

def main():
    from cmg_nb.core import CMGConfig
    from cmg_nb.frozen import frozen_method
    from cmg_nb.masking import localisation_report
    from cmg_nb.io import atomic_write_text
    t0, per = time.time(), {}
    for task, sp in splits():
        cache = {}
        det = frozen_method("ssd+cmer-frozen", CMGConfig(), seed=0).fit(sp.train, sp.valid, stage_cache=cache, progress=False)
        cm = next(v for k, v in cache.items() if isinstance(v, dict) and "valid_labels" in v)
        cands, S = det.candidates(), det.config.image_size
        r = {}
        for name, lab, d in (("train", cm["labels"], sp.train), ("valid", cm["valid_labels"], sp.valid)):
            rep = localisation_report(lab, cands, d.masks_array(S))
            r[name] = {row: {k: round(float(v), 4) for k, v in rep.loc[row].items()} for row in ("chosen", "random", "best candidate")}
        r["e1"] = {k: float(det.info_[k]) for k in ("e1_R1", "e1_R5", "e1_chance_R1")}
        per[task] = r
        print(task, {n: (r[n]["chosen"]["whole_chosen"], r[n]["chosen"]["box_iou"]) for n in ("train", "valid")}, f"{time.time() - t0:.0f}s", flush=True)
    res = dict(date=datetime.date.today().isoformat(), tasks=list(per), per_task=per, seconds=round(time.time() - t0, 1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT, json.dumps(res, indent=1))

if __name__ == "__main__":
    main()
