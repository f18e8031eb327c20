"""Worker of `tests/test_distributed.py`: tiny trainings of the matching model E1 (Eq. 1), the RID (Eq. 3) and the
anomaly encoder E2 (NT-Xent + Eq. 13 through the feature bank), alone or as one of the processes `torchrun` starts.

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
    "Weights (part.name -> array) and per-epoch losses of tiny E1 (Eq. 1), RID (Eq. 3) and guided E2 (NT-Xent + Eq. 13) trainings."
    from fastai.callback.tracker import EarlyStoppingCallback
    from cmg_nb.core import CMGConfig
    from cmg_nb.data import to_float_tensor
    from cmg_nb.scenes import make_scenes
    from cmg_nb.cmle import cluster_texts, lle_weights
    from cmg_nb.contrastive import matching_learner, QuietSaveModel
    from cmg_nb.rid import train_rid
    from cmg_nb.ssd import ssd_learner, KeepBest
    from cmg_nb.training import fit_learner
    x = to_float_tensor(make_scenes(n + 16, size=16, seed=0, shapes=("circle", "square")).to_array(16))
    rng = np.random.default_rng(0)
    Y, labels = rng.normal(size=(n + 16, 8)).astype(np.float32), rng.integers(0, 4, n + 16)
    W = lle_weights(Y[:n], cluster_texts(Y[:n], k=2, seed=0), n_neighbors=4)
    cfg = CMGConfig(image_size=16, backbone="convnet", feat_dim=16, epochs=epochs, match_epochs=epochs, rid_epochs=epochs,
                    batch_size=bs, lam=1.0, lr=1e-3, seed=seed)
    fix = (lambda m: m) if batchnorm else no_batchnorm
    out = {}
    # E1: Eq. 1 over the global batch; early stopping + fastai's SaveModelCallback (rank 0 saves, every rank reloads)
    learn = matching_learner(x[:n], Y[:n], cfg, valid=(x[n:], Y[n:]), augment=False)
    fix(learn.model)
    fit_learner(learn, epochs, learn.lr, cbs=[EarlyStoppingCallback(monitor="valid_loss", patience=3),
                                             QuietSaveModel(monitor="valid_loss", fname="best_matching")], progress=False)
    m = learn.model.eval()
    out.update({f"m.{k}": v.detach().cpu().numpy() for k, v in m.state_dict().items()})
    out["m_losses"] = np.array(learn.recorder.values, dtype=np.float64)
    # RID on the frozen E1 features (train_rid as the pipeline calls it)
    r = train_rid(x[:n], labels[:n], cfg, valid=(x[n:], labels[n:]), features=m, progress=False)
    out.update({f"r.{k}": v.detach().cpu().numpy() for k, v in r.head.state_dict().items()})
    # E2: NT-Xent + Eq. 13 through the feature bank, keep-best on validation images
    learn = ssd_learner(x[:n], cfg, W=W, valid=x[n:], small_input=False)
    fix(learn.model)
    fit_learner(learn, epochs, cfg.lr, cbs=[KeepBest()], progress=False)
    out.update({f"w.{k}": v.detach().cpu().numpy() for k, v in learn.model.state_dict().items()})
    out["losses"] = np.array(learn.recorder.values, dtype=np.float64)
    return out

if __name__ == "__main__":
    path, seed, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t = time.time()
    res = train(seed, bs, batchnorm=os.environ.get("CMG_TEST_BN") == "1")
    if int(os.environ.get("RANK", 0)) == 0:
        np.savez(path, seconds=time.time() - t, world=int(os.environ.get("WORLD_SIZE", 1)), **res)
