"""Tables I and II, the M ablation, Fig. 10 and the "beyond the paper" runs on the embedded scenes, saved as JSON.

Everything the results page (`nbs/16_results.ipynb`) shows about the scenes is read back from the files this
writes into `nbs/results/`; nothing on the page is typed by hand.

    python bench/scenes_tables.py                      # tables, m9, fig10, demo (about 15 min on 2 idle cores)
    python bench/scenes_tables.py --parts beyond       # the pretrained / zero-shot methods (about 25 min)

Parts (each writes its own file):
- `tables` -> tables.json: SSD, CMDA, SHE, CMG, SSD+CMER, SSD+CMLE, seeds 0-2, `DEMO_CONFIG` (M = 4, the paper's M for
  UCM and Class-COCO), plus, for the CMER methods, the RID's validation accuracy beside 1/M and the majority-region rates;
- `m9` -> ablation_m9.json: the two methods that mask (SSD+CMER, CMG) again at M = 9, the earlier demo default (the
  other two do not mask, so M does not change them); the page's M ablation reads both files;
- `fig10` -> fig10.json: test AUROC per epoch of CMG, CMDA and SSD (seed 0), for the plot only;
- `demo` -> demo_frozen.json: `cmg demo` with its CPU defaults (the frozen family), rerun; its `measured` block (wall
  clock and memory from an earlier run with a separate tool) is carried over and marked as such;
- `beyond` -> beyond.json: pretrained-maha-32, cmg-pretrained, zero-shot, zero-shot-fused with `DEMO_CONFIG`.
Nothing is chosen from these numbers: the settings were fixed before the runs.
"""
import argparse, os, json, time, datetime, warnings, tempfile
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np
from cmg_nb.io import atomic_write_text
import torch
from cmg_nb.core import CMGConfig
from cmg_nb.data import one_class_split
from cmg_nb.scenes import make_scenes
from cmg_nb.evaluation import DEMO_CONFIG, run_methods, demo, CPU_DEMO_METHODS
from cmg_nb.experiments import experiment_results, auroc_per_epoch
from cmg_nb.masking import best_masks
from cmg_nb.pipeline import as_image_tensor, caption_embeddings

RESULTS = Path(os.environ.get("CMG_RESULTS", Path(__file__).resolve().parents[1] / "nbs" / "results"))   # CMG_RESULTS: write elsewhere
NORMAL = ["circle", "square", "triangle", "diamond"]
TABLE_METHODS = ("ssd", "cmda", "she", "cmg", "ssd+cmer", "ssd+cmle")
BEYOND_METHODS = ("pretrained-maha-32", "zero-shot", "zero-shot-fused", "cmg-pretrained")   # the slow one (fine-tuning) last

def machine()->str:
    return (torch.cuda.get_device_name() if torch.cuda.is_available() else
            f"{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), no GPU")

def write(name:str, d:dict):
    p = atomic_write_text(RESULTS / name, json.dumps(d, indent=1) + "\n")
    print(f"wrote {p}", flush=True)

def rid_record(det, split, cfg)->dict:
    "RID accuracy on the normal validation images beside 1/M and the majority-region rates (no test data)."
    xv = as_image_tensor(split.valid, cfg.image_size)
    Tv = caption_embeddings(split.train, split.valid, cfg.text_encoder)["Tv"]
    lv = best_masks(det.matching_, xv, Tv, cfg)                         # CMER's labels of the validation images (Eq. 2)
    lt = np.asarray(det.info_["train_labels"])
    mode = int(np.bincount(lt, minlength=cfg.n_regions).argmax())
    return dict(rid_valid_accuracy=float(det.info_["rid_valid_accuracy"]), chance=1 / cfg.n_regions,
                majority_train=float(np.mean(lt == mode)),              # share of the most frequent label among training images
                majority_rule_valid=float(np.mean(lv == mode)),         # accuracy on validation of always naming the training majority
                valid_labels=np.bincount(lv, minlength=cfg.n_regions).tolist(), train_labels=np.bincount(lt, minlength=cfg.n_regions).tolist())

def fit_table(split, methods, cfg, seeds=(0, 1, 2)):
    runs, models = run_methods(split, methods, seeds, cfg, progress=False, keep_models=True)
    rid = [dict(method=m, seed=s, **rid_record(d, split, cfg)) for (m, s), d in models.items() if m in ("cmg", "ssd+cmer")]
    return runs, rid

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["tables", "m9", "fig10", "demo"], choices=["tables", "m9", "fig10", "demo", "beyond"])
    ap.add_argument("--beyond-methods", nargs="+", default=list(BEYOND_METHODS), help="the methods of the `beyond` part, in this order")
    args = ap.parse_args()
    cfg = CMGConfig(**DEMO_CONFIG)
    if os.environ.get("CMG_SMOKE"): cfg = cfg.replace(epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf")   # a quick check of the script
    split = one_class_split(make_scenes(1600, size=64, seed=1234), NORMAL, seed=0)
    base = dict(n_images=1600, scenes_seed=1234, normal_groups=NORMAL, split=dict(train=len(split.train), valid=len(split.valid),
                test=len(split.test), anomalies=int(split.test_labels.sum())), machine=machine())
    for part in args.parts:
        t0, load0, today = time.time(), os.getloadavg()[0], datetime.date.today().isoformat()
        stamp = lambda: dict(seconds=round(time.time() - t0, 1), load_average=[round(load0, 1), round(os.getloadavg()[0], 1)], date=today)
        if part == "tables":
            from cmg_nb.baselines import SHE
            runs, rid = fit_table(split, TABLE_METHODS, cfg)
            she0 = SHE(cfg, seed=0).fit(split.train, split.valid, progress=False)
            write("tables.json", dict(results=experiment_results(runs), runs=json.loads(runs.to_json(orient="records")), rid=rid,
                  she_classifier_seed0={k: she0.info_[k] for k in ("train_accuracy", "valid_accuracy", "best_epoch", "epochs_run")},
                  config=cfg.to_dict(), **base, **stamp()))
        elif part == "m9":
            c9 = cfg.replace(n_regions=9)
            runs, rid = fit_table(split, ("cmg", "ssd+cmer"), c9)
            write("ablation_m9.json", dict(results=experiment_results(runs), runs=json.loads(runs.to_json(orient="records")), rid=rid,
                  config=c9.to_dict(), **base, **stamp()))
        elif part == "fig10":
            curves = auroc_per_epoch(split, ("cmg", "cmda", "ssd"), cfg, seed=0)
            write("fig10.json", dict(curves=curves.to_dict("records"), config=cfg.to_dict(), seed=0, machine=machine(), **stamp()))
        elif part == "demo":
            old = json.loads((RESULTS / "demo_frozen.json").read_text()) if (RESULTS / "demo_frozen.json").exists() else {}
            s = demo(Path(tempfile.mkdtemp()) / "cmg-demo", methods=CPU_DEMO_METHODS, progress=False)
            s["measured"] = old.get("measured", {})                        # wall clock / memory of the earlier timed run (not remeasured)
            if old.get("cmg_frozen_minus_caption_free"):                    # the file this run replaces: its margin, for the page's comparison
                s["previous"] = dict(cmg_frozen_minus_caption_free=old["cmg_frozen_minus_caption_free"], date=old.get("rerun", {}).get("date"),
                                     localisation_chosen=old.get("localisation", {}).get("table", {}).get("chosen"))
            s["measured_note"] = "wall_s, cpu_s, peak_mib: the earlier timed run (farm-bench); seconds: this rerun"
            s["rerun"] = dict(machine=machine(), **stamp())
            write("demo_frozen.json", s)
        elif part == "beyond":                                          # merged into beyond.json method by method, seed by seed
            import pandas as pd
            f = RESULTS / "beyond.json"
            for m in args.beyond_methods:
                for seed in (0, 1, 2):
                    old = json.loads(f.read_text()) if f.exists() else {}
                    prev = pd.DataFrame(old.get("runs", []))
                    if len(prev) and ((prev.method == m) & (prev.seed == seed)).any(): continue
                    runs, _ = run_methods(split, (m,), (seed,), cfg, progress=False)
                    allr = pd.concat([prev, runs], ignore_index=True) if len(prev) else runs
                    allr = pd.concat([allr[allr.method == k].sort_values("seed") for k in dict.fromkeys(allr.method)], ignore_index=True)
                    write("beyond.json", dict(results=experiment_results(allr), runs=json.loads(allr.to_json(orient="records")), config=cfg.to_dict(),
                          note="ssd and cmg of the same split, config and seeds: tables.json", **base, **stamp()))

if __name__ == "__main__": main()
