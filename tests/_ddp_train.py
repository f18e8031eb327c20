"""Worker of `tests/test_distributed.py`: a tiny anomaly-encoder training (NT-Xent + Eq. 13 through the feature
bank, keep-best on validation images), alone or as one of the processes `torchrun` starts.

    python tests/_ddp_train.py OUT.npz SEED BATCH                                 # alone
    python -m torch.distributed.run --nproc_per_node 2 tests/_ddp_train.py OUT.npz SEED BATCH   # 2 processes (gloo)
"""
import os, sys, time
import numpy as np, torch, torch.nn as nn

def no_batchnorm(m:nn.Module)->nn.Module:
    "Replace every BatchNorm by the identity (CPU processes cannot share batch statistics; see 02a_training)."
    for name, c in m.named_children():
        if isinstance(c, nn.modules.batchnorm._BatchNorm): setattr(m, name, nn.Identity())
        else: no_batchnorm(c)
    return m

def train(seed:int, bs:int, epochs:int=2, n:int=64, batchnorm:bool=False)->dict:
    "Weights (name -> array) and per-epoch (train, valid) losses after a tiny guided E2 training."
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import make_scenes, to_float_tensor
    from cmg_nb.cmle import cluster_texts, lle_weights
    from cmg_nb.ssd import ssd_learner, KeepBest
    from cmg_nb.training import fit_learner
    x = to_float_tensor(make_scenes(n + 16, size=16, seed=0, shapes=("circle", "square")).to_array(16))
    Y = np.random.default_rng(0).normal(size=(n, 8))
    W = lle_weights(Y, cluster_texts(Y, k=2, seed=0), n_neighbors=4)
    cfg = CMGConfig(image_size=16, backbone="convnet", feat_dim=16, epochs=epochs, batch_size=bs, lam=1.0, lr=1e-3, seed=seed)
    learn = ssd_learner(x[:n], cfg, W=W, valid=x[n:], small_input=False)
    if not batchnorm: no_batchnorm(learn.model)
    fit_learner(learn, epochs, cfg.lr, cbs=[KeepBest()], progress=False)
    out = {f"w.{k}": v.detach().cpu().numpy() for k, v in learn.model.state_dict().items()}
    out["losses"] = np.array(learn.recorder.values, dtype=np.float64)
    return out

if __name__ == "__main__":
    path, seed, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t = time.time()
    res = train(seed, bs, batchnorm=os.environ.get("CMG_TEST_BN") == "1")
    if int(os.environ.get("RANK", 0)) == 0:
        np.savez(path, seconds=time.time() - t, world=int(os.environ.get("WORLD_SIZE", 1)), **res)
