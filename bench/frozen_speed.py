"""Speed and memory of `cmg-frozen` on real images (issue 13's targets), written to nbs/results/frozen_speed.json.

    python bench/frozen_speed.py            # fit 2,500 Open Clip Art images at 96 px; scoring throughput
    python bench/frozen_speed.py --n 10000  # peak memory of a fit on 10,000 images (the 8,083 pictures plus mirrored copies)

Targets: fit <= 120 s and <= 2x the floor (one bare backbone pass over every image the fit encodes); scoring
>= 0.5x the bare backbone's throughput; peak memory <= 3 GB for 10,000 images. Text embeddings are computed afresh
(a temporary cache folder), so the fit time includes them.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from cmg_nb.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2500, help="training images")
    p.add_argument("--out", default=str(ROOT / "nbs/results/frozen_speed.json"))
    p.add_argument("--key", default=None, help="the entry of the JSON to write (default: n{N}, or n{N}_whole_rid with --rid-from whole)")
    p.add_argument("--rid-from", default="views", choices=("views", "whole"), help="the RID: every view (the default) or the whole image only")
    a = p.parse_args()
    os.environ["CMG_CACHE_DIR"] = tempfile.mkdtemp(prefix="cmg_speed_")        # no text embeddings from earlier runs
    import torch, warnings
    warnings.filterwarnings("ignore")
    from cmg_nb.openclipart import load_openclipart
    from cmg_nb.data import CaptionedImages
    from cmg_nb.frozen import frozen_method, frozen_backbone, encode
    data = load_openclipart(cache_size=96, cache_dir=Path.home() / ".cache/cmg_nb/openclipart")
    x = data.to_array(96); caps = data.captions
    rng = np.random.default_rng(0)
    if a.n <= len(x): idx = rng.permutation(len(x))[:a.n]; ims, cs = x[idx], [caps[i] for i in idx]
    else:
        k = a.n - len(x); extra = rng.permutation(len(x))[:k]
        ims = np.concatenate([x, x[extra][:, :, ::-1]]); cs = caps + [caps[i] for i in extra]      # mirrored copies
    train = CaptionedImages(np.ascontiguousarray(ims), cs, ["normal"] * len(ims), name="speed")
    if a.n > 2500: del data, x, ims                                   # the memory figure is the fit's: keep only its training set
    import gc; gc.collect()
    t = time.time()
    det = frozen_method("cmg-frozen", seed=0, rid_from=a.rid_from).fit(train, progress=False)
    fit_s = time.time() - t
    res = dict(n_train=len(train), fit_seconds=round(fit_s, 1), encoded=det.info_["encoded"], backbone_seconds=det.info_["backbone_seconds"],
               peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), threads=torch.get_num_threads(),
               load_average=os.getloadavg()[0], candidates=det.config.cmer_candidates, n_candidates=det.info_.get("n_candidates"),
               rid_from=a.rid_from, date=time.strftime("%Y-%m-%d"),
               commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    if a.n <= 2500:
        net, _ = frozen_backbone()
        reps = int(np.ceil(det.info_["encoded"] / len(ims)))
        t = time.time()
        for _ in range(reps): encode(net, ims)
        per_image = (time.time() - t) / (reps * len(ims))
        res.update(floor_seconds=round(per_image * det.info_["encoded"], 1), fit_over_floor=round(fit_s / (per_image * det.info_["encoded"]), 2))
        test = x[rng.permutation(len(x))[:1000]]                        # (n <= 2500: x is still here)
        t = time.time(); encode(net, test); bare = 1000 / (time.time() - t)
        t = time.time(); det.anomaly_score(test); scored = 1000 / (time.time() - t)
        if det.config.cmer: res["test_whole_kept"] = round(float((det.candidates().kind.to_numpy()[det.choices(test)] == "whole").mean()), 3)
        res.update(bare_images_per_s=round(bare, 1), scoring_images_per_s=round(scored, 1), scoring_over_bare=round(scored / bare, 2))
    print(json.dumps(res, indent=1))
    out = Path(a.out); old = json.loads(out.read_text()) if out.is_file() else {}
    old[a.key or f"n{a.n}" + ("_whole_rid" if a.rid_from == "whole" else "")] = res
    atomic_write_text(out, json.dumps(old, indent=1))

if __name__ == "__main__":
    sys.exit(main())
