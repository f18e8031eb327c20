"""Worker of `tests/test_distributed.py` for the frozen family: a tiny `cmg-frozen` fit whose backbone passes are
sharded over the processes `torchrun` starts (each encodes its rows, all gather them), alone or as one of several.

    python tests/_ddp_frozen.py OUT.npz                                           # alone
    python -m torch.distributed.run --nproc_per_node 2 tests/_ddp_frozen.py OUT.npz   # 2 processes (gloo)
"""
import os, sys, time
import numpy as np

SETTINGS = dict(image_size=32, text_encoder="tfidf", epochs=3, match_epochs=2, rid_epochs=2, window_grid=2, batch_size=32)

def split():
    "The scenes of the test: 6 normal shapes of 8; 69 training images (odd: the shares differ), 23 normal validation, 35 test images."
    from cmg_nb.scenes import make_scenes
    from cmg_nb.data import one_class_split
    return one_class_split(make_scenes(152, size=32, seed=3), ["circle", "square", "triangle", "diamond", "star", "ring"],
                           val_frac=0.25, max_anomalies=12, seed=0)

def fit(model:str|None=None)->dict:
    "Gathered backbone features (f.KIND.N), E2 and RID weights (h., r.), test scores, and this process's backbone count of a `cmg-frozen` fit."
    from cmg_nb.frozen import frozen_method
    from cmg_nb.training import sharded_map
    sp, cache = split(), {}
    det = frozen_method("cmg-frozen", seed=0, **SETTINGS).fit(sp.train, sp.valid, stage_cache=cache, progress=False)
    out = {f"f.{k[2].split('-')[0]}.{len(v)}": v for k, v in cache.items() if k[0] == "frozen-features"}
    out.update({f"h.{k}": v.numpy() for k, v in det.head_.state_dict().items()})
    out.update({f"r.{k}": v.numpy() for k, v in det.rid_.state_dict().items()})
    out.update(scores=det.anomaly_score(sp.test), encoded=det.info_["encoded"], n_train=len(sp.train), n_valid=len(sp.valid))
    for n in (5, 1): out[f"squares{n}"] = sharded_map(lambda lo, hi: np.arange(lo, hi) ** 2, n)   # uneven shares; with n=1 one process has none
    if model: det.save(model)                                                    # rank 0 writes
    return out

if __name__ == "__main__":
    import torch.distributed as dist
    path = sys.argv[1]
    t = time.time()
    res = fit(model=path.replace(".npz", ".cmg"))
    counts = [res["encoded"]]
    if dist.is_initialized():                                # every process's backbone count (the group `fit` joined)
        counts = [None] * dist.get_world_size(); dist.all_gather_object(counts, res["encoded"])
    if int(os.environ.get("RANK", 0)) == 0:
        np.savez(path, seconds=time.time() - t, world=int(os.environ.get("WORLD_SIZE", 1)), encoded_per_rank=np.array(counts), **res)
    from cmg_nb.training import close_distributed
    close_distributed()                                      # leave together: a process that exits with gloo's threads alive can abort
