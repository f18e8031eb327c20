"Tests of CMER (text encoder, matching model, masks, RID) that notebooks express badly: files, invariances, determinism."
import warnings
import numpy as np
import pytest
import torch
from cmg_nb.core import CMGConfig
from cmg_nb.text import TfidfTextEncoder, EmbeddingCache, embed_captions, encode_texts
from cmg_nb.contrastive import MatchingModel, train_matching_model, cross_modal_contrastive_loss
from cmg_nb.masking import grid_masks, best_masks, candidate_scores, mask_images, masked_candidates
from cmg_nb.rid import train_rid, rid_select, rid_scores

torch.set_num_threads(1)   # tiny models: one thread is as fast, and immune to OpenMP thrashing on a shared CPU

CAPS = ["a red circle", "a red round disc", "a blue square", "a green square box", "a yellow triangle",
        "a small triangle", "a round circle in the middle", "a square in the corner"]

@pytest.fixture
def tfidf(): return TfidfTextEncoder(CAPS, dim=4)

def test_corrupt_cache_is_rebuilt(tmp_path, tfidf):
    items = [[c] for c in CAPS[:3]]
    ref = embed_captions(items, tfidf, cache_dir=tmp_path)
    (f,) = tmp_path.glob("*.npz")
    f.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable text-embedding cache"):
        again = embed_captions(items, tfidf, cache_dir=tmp_path)
    np.testing.assert_allclose(again, ref)
    with warnings.catch_warnings():                      # the rebuilt file is readable again
        warnings.simplefilter("error")
        np.testing.assert_allclose(embed_captions(items, tfidf, cache_dir=tmp_path), ref)

def test_cache_is_keyed_by_text_not_position(tmp_path, tfidf):
    a = encode_texts(CAPS[:4], tfidf, cache_dir=tmp_path)
    b = encode_texts(CAPS[:4][::-1] + CAPS[:2], tfidf, cache_dir=tmp_path)
    np.testing.assert_allclose(b, np.concatenate([a[::-1], a[:2]]))
    cache = EmbeddingCache(tmp_path, tfidf.key)
    assert len(cache.ids) == 4                           # duplicates stored once

def test_default_cache_dir_honours_env(monkeypatch, tmp_path, tfidf):
    monkeypatch.setenv("CMG_CACHE_DIR", str(tmp_path))
    embed_captions([["a red circle"]], tfidf)
    assert len(list((tmp_path / "text_emb").glob("*.npz"))) == 1

@pytest.mark.parametrize("h,w,m", [(7, 7, 4), (32, 32, 9), (33, 20, 16), (64, 64, 64)])
def test_grid_masks_tile(h, w, m):
    g = grid_masks(h, w, m)
    assert g.shape == (m, h, w) and (g.sum(0) == 1).all()

def _scene_batch(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 16, 16, generator=g), torch.randn(n, 12, generator=g)

def test_best_masks_do_not_depend_on_batch_size():
    x, t = _scene_batch()
    torch.manual_seed(0)
    model = MatchingModel(12, small_input=False).eval()
    cfg = CMGConfig(image_size=16)
    np.testing.assert_allclose(candidate_scores(model, x, t, cfg, bs=1), candidate_scores(model, x, t, cfg, bs=24), atol=1e-5)
    assert (best_masks(model, x, t, cfg, bs=5) == best_masks(model, x, t, cfg, bs=24)).all()

def test_candidates_match_mask_images():
    x, _ = _scene_batch(6)
    cfg = CMGConfig(image_size=16, n_regions=9, mask_mode="soft", soft_scale=0.2)
    labels = np.array([0, 8, 3, 4, 4, 1])
    cands = masked_candidates(x, 9, "soft", 0.2)
    torch.testing.assert_close(mask_images(x, labels, cfg), cands[torch.arange(6), torch.as_tensor(labels)])

def test_training_is_deterministic():
    x, t = _scene_batch(32)
    cfg = CMGConfig(image_size=16, match_epochs=1, batch_size=16, rid_epochs=1)
    m1 = train_matching_model(x, t, cfg, small_input=False, progress=False)
    m2 = train_matching_model(x, t, cfg, small_input=False, progress=False)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()): torch.testing.assert_close(a, b)
    labels = best_masks(m1, x, t, cfg)
    r1 = train_rid(x, labels, cfg, features=m1, progress=False)
    r2 = train_rid(x, labels, cfg, features=m1, progress=False)
    np.testing.assert_allclose(rid_scores(r1, x), rid_scores(r2, x), atol=1e-6)
    assert (rid_select(r1, x, cfg, bs=3) == rid_select(r1, x, cfg, bs=32)).all()

def test_frozen_features_stay_frozen():
    x, t = _scene_batch(32)
    cfg = CMGConfig(image_size=16, match_epochs=1, batch_size=16, rid_epochs=2)
    m = train_matching_model(x, t, cfg, small_input=False, progress=False)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rid = train_rid(x, best_masks(m, x, t, cfg), cfg, features=m, progress=False)
    for k, v in m.state_dict().items(): torch.testing.assert_close(v, before[k])          # the matching model is untouched
    for k, v in rid.features.state_dict().items(): torch.testing.assert_close(v, before["backbone." + k])

def test_loss_is_invariant_to_embedding_scale():
    g = torch.Generator().manual_seed(0)
    t, v = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    for variant in ("paper", "infonce"):
        torch.testing.assert_close(cross_modal_contrastive_loss(t, v, 0.2, variant), cross_modal_contrastive_loss(3 * t, 0.1 * v, 0.2, variant))

def test_candidates_of_a_batch_go_through_the_encoder_in_one_pass():
    x, t = _scene_batch(10)
    torch.manual_seed(0)
    model = MatchingModel(12).eval()
    rid = train_rid(x, np.zeros(10, np.int64), CMGConfig(image_size=16, rid_epochs=1), features=model, progress=False)
    calls = []
    model.backbone.register_forward_hook(lambda mod, inp, out: calls.append(len(inp[0])))
    best_masks(model, x, t, CMGConfig(image_size=16, n_regions=9), bs=4)
    assert calls == [4 * 9, 4 * 9, 2 * 9]
    calls.clear()
    rid.features.register_forward_hook(lambda mod, inp, out: calls.append(len(inp[0])))
    rid_select(rid, x, bs=6)
    assert calls == [6 * 4, 4 * 4]


# --- Algorithm 1 and 2 as the paper prints them: E2 trains on caption-masked images, test images are RID-masked ---

def _tiny_cmg(method="cmg", n=160):
    from cmg_nb.data import one_class_split
    from cmg_nb.scenes import make_scenes
    from cmg_nb.pipeline import CMG
    sp_ = one_class_split(make_scenes(n, size=32, seed=3), ["circle", "square", "triangle", "diamond"], seed=0)
    cfg = CMGConfig(image_size=16, backbone="convnet", epochs=1, match_epochs=1, rid_epochs=1, text_encoder="tfidf", batch_size=32, lr=2e-3)
    return sp_, CMG.for_method(method, cfg), cfg

def _spy_train_encoder(monkeypatch):
    "Record what `CMG.fit` hands to `train_encoder` (the images E2 trains on, the LLE weights)."
    import cmg_nb.pipeline as P
    seen, real = {}, P.train_encoder
    def spy(x, cfg, W=None, valid=None, **kw):
        seen.update(x=x.clone(), W=W, valid=None if valid is None else valid.clone()); return real(x, cfg, W=W, valid=valid, **kw)
    monkeypatch.setattr(P, "train_encoder", spy)
    return seen

def test_algorithm1_trains_e2_on_caption_masked_images(monkeypatch):
    "E2's training images are the images masked at CMER's caption-chosen labels (Eq. 2 with E1 and the captions), not the RID's."
    from cmg_nb.pipeline import as_image_tensor, caption_embeddings
    seen = _spy_train_encoder(monkeypatch)
    sp_, det, cfg = _tiny_cmg()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); det.fit(sp_.train, sp_.valid, progress=False)
    x = as_image_tensor(sp_.train, cfg.image_size)
    T = caption_embeddings(sp_.train, sp_.valid, det.config.text_encoder)["T"]
    l_caption = best_masks(det.matching_, x, T, det.config)                  # recomputed from E1 and the captions
    np.testing.assert_array_equal(det.info_["train_labels"], l_caption)
    torch.testing.assert_close(seen["x"], mask_images(x, l_caption, det.config))
    l_rid = rid_select(det.rid_, x, det.config)
    if (l_rid != l_caption).any():                                           # the RID's masks are a different set of images
        assert not torch.equal(seen["x"], mask_images(x, l_rid, det.config))

def test_algorithm2_scores_rid_masked_images():
    "anomaly_score = Eq. 14 on E2's features of the test images masked where the RID points (no captions at test time)."
    from cmg_nb.pipeline import as_image_tensor
    from cmg_nb.ssd import extract_features
    sp_, det, cfg = _tiny_cmg()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); det.fit(sp_.train, sp_.valid, progress=False)
    xt = as_image_tensor(sp_.test, cfg.image_size)
    expected = det.scorer_.score(extract_features(det.encoder_, mask_images(xt, rid_select(det.rid_, xt, det.config), det.config)))
    np.testing.assert_allclose(det.anomaly_score(sp_.test), expected, rtol=1e-5, atol=1e-6)
    unmasked = det.scorer_.score(extract_features(det.encoder_, xt))
    assert not np.allclose(unmasked, expected)                               # masking the test images changes the scores


# --- issue 22: CMER's candidate views; a hand-made matching model whose embedding is the share of each colour ---

COLOURS = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0]])    # red, green, blue, yellow, black (masked)

class ColourShares:
    "encode_image: the share of each view's pixels nearest each colour; encode_text: the caption's embedding as it is."
    def encode_image(self, v):
        d = ((v.movedim(-3, -1)[..., None, :] - COLOURS) ** 2).sum(-1)             # (..., H, W, 5)
        return torch.nn.functional.one_hot(d.argmin(-1), 5).float().mean((-3, -2))
    def encode_text(self, t): return t

def _labels(x, caption):
    from cmg_nb.masking import cmer_candidates, candidate_views
    from cmg_nb.masking import cmer_choice
    from cmg_nb.frozen import view_scores
    cands = cmer_candidates("windows", 4, 3)
    m = ColourShares()
    views = torch.stack([m.encode_image(v) for v in candidate_views(x, cands)])      # (N, C, 5): the "features" are the shares
    class Unit:                                                                        # E1 as the unit vector of its input: cosines
        encode_image = encode_text = staticmethod(lambda t: torch.nn.functional.normalize(torch.as_tensor(t), dim=-1))
    return cmer_choice(view_scores(Unit(), views.numpy(), np.asarray(caption, np.float32))), cands

def test_whole_image_wins_when_every_window_cuts_the_object():
    "Four coloured quadrants, a caption naming all four equally: every mask and every window cuts the object, so CMER keeps the whole image."
    x = torch.zeros(1, 3, 12, 12)
    for (r, c), col in zip(((0, 0), (0, 1), (1, 0), (1, 1)), COLOURS[:4]): x[0, :, 6 * r:6 * r + 6, 6 * c:6 * c + 6] = col[:, None, None]
    labels, cands = _labels(x, [[1, 1, 1, 1, 0]])
    assert cands.kind[labels[0]] == "whole"

def test_whole_margin_keeps_the_whole_image_against_a_slightly_better_window():
    "A red square in the centre cell, a caption of mostly red: the centre window beats the whole image by a cosine gap g; a margin above g keeps the whole image, one below does not."
    from cmg_nb.masking import cmer_candidates, candidate_views
    from cmg_nb.masking import cmer_choice
    x = torch.zeros(1, 3, 12, 12); x[0, 0, 4:8, 4:8] = 1
    cands = cmer_candidates("windows", 4, 3)
    z = torch.nn.functional.normalize(torch.stack([ColourShares().encode_image(v) for v in candidate_views(x, cands)])[0], dim=-1)
    t = torch.nn.functional.normalize(torch.tensor([0.8, 0, 0, 0, 0.2]), dim=0)
    S = (z @ t).numpy()[None]
    whole = (cands.kind == "whole").to_numpy()
    g = S[0, ~whole].max() - S[0, whole][0]
    assert g > 0 and cands.kind[cmer_choice(S)[0]] == "window"
    assert cands.kind[cmer_choice(S, whole, g + 1e-6)[0]] == "whole" and cands.kind[cmer_choice(S, whole, g - 1e-6)[0]] == "window"

def test_window_wins_when_the_caption_names_a_small_object():
    "A red square exactly in the centre cell on black, a caption of red only: the centre cell's window is kept."
    x = torch.zeros(1, 3, 12, 12); x[0, 0, 4:8, 4:8] = 1
    labels, cands = _labels(x, [[1, 0, 0, 0, 0]])
    assert cands.iloc[labels[0]][["kind", "r0", "c0", "r1", "c1"]].tolist() == ["window", 1, 1, 2, 2]
