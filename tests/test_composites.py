"""Composites (`cmg_nb.composites`) on the Open Clip Art fixture (`tests/fixtures/openclipart/`): each mask's bounding
box is the pasted box of `meta`, the drawing's side is 1/3 to 1/2 of the image, pixels outside the box are the
background crop `meta` names, captions and groups are the drawings' own, a seed gives the same set (also rebuilt from
scratch), another seed another set, the cache answers the second build, and a task's split on a tree with the task's
category. Fast: tiny images, a few drawings."""
import shutil, warnings
import numpy as np
import pytest
from PIL import Image
import cmg_nb.composites as cm
from cmg_nb.composites import make_composites, composite_split, composite_photos, COMPOSITE_TASKS
from cmg_nb.openclipart import load_openclipart
from conftest import FIXTURES

OC = FIXTURES / "openclipart"

def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # the fixture's PNG without SVG: the loader's warning
        return fn(*a, **kw)

def bbox(m):
    "(x0, y0, x1, y1) of a bool mask, exclusive ends."
    r, c = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return np.array([c[0], r[0], c[-1] + 1, r[-1] + 1])

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = quiet(load_openclipart, OC)
    return d, quiet(make_composites, d, size=32, seed=0, cache_dir=tmp_path_factory.mktemp("c"))

def test_masks_boxes_and_backgrounds(built):
    d, c = built
    assert len(c) == len(d) and c.images.shape == (len(d), 32, 32, 3) and c.images.dtype == np.uint8
    assert c.masks.shape == (len(d), 32, 32) and c.masks.dtype == bool
    photos = composite_photos()
    for i, r in c.meta.iterrows():
        box = np.array([r.x0, r.y0, r.x1, r.y1])
        assert np.abs(bbox(c.masks[i]) - box).max() <= 1                       # the mask is the pasted box's alpha
        inside = np.zeros((32, 32), bool); inside[r.y0:r.y1, r.x0:r.x1] = True
        assert not (c.masks[i] & ~inside).any()
        side = max(r.x1 - r.x0, r.y1 - r.y0)
        assert 32 / 3 <= side <= 16 and r.scale == side / 32                    # 1/3 to 1/2 of the image side
        crop = photos[r.photo][r.crop_y:r.crop_y + r.crop_side, r.crop_x:r.crop_x + r.crop_side]
        bg = np.asarray(Image.fromarray(np.ascontiguousarray(crop[:, ::-1] if r.flip else crop))
                        .resize((32, 32), Image.BILINEAR, reducing_gap=3.0))
        assert np.array_equal(c.images[i][~inside], bg[~inside])                # outside the box: the background crop
        assert 0.4 * 427 - 1 <= r.crop_side <= 427

def test_the_opaque_bird_is_pasted_as_it_is(built):
    d, c = built
    i = c.meta.path.tolist().index(str(OC / "png/animals/birds/bird_of_peace_01.png"))
    r = c.meta.iloc[i]
    assert c.masks[i].sum() == (r.x1 - r.x0) * (r.y1 - r.y0)                    # an opaque square: all of its box
    assert (c.images[i][c.masks[i]] == [0, 0, 200]).all()

def test_captions_and_groups_are_the_drawings(built):
    d, c = built
    assert c.meta.path.tolist() == [str(p) for p in d.images]
    assert c.captions == d.captions and c.groups.tolist() == d.groups.tolist() == c.meta.category.tolist()

def test_deterministic_for_a_seed(built, tmp_path, monkeypatch):
    d, c = built
    again = quiet(make_composites, d, size=32, seed=0, cache_dir=tmp_path / "fresh")    # from scratch
    assert np.array_equal(again.images, c.images) and np.array_equal(again.masks, c.masks) and again.meta.equals(c.meta)
    other = quiet(make_composites, d, size=32, seed=1, cache_dir=tmp_path / "fresh")
    assert (other.images != c.images).mean() > 0.5
    def boom(*a): raise AssertionError("decoded although cached")
    monkeypatch.setattr(cm, "_decode_drawing", boom)
    cached = quiet(make_composites, d, size=32, seed=0, cache_dir=tmp_path / "fresh")
    assert np.array_equal(cached.images, c.images) and len(list((tmp_path / "fresh").glob("composites-32px-*.npz"))) == 2

def test_a_drawing_keeps_its_composite_in_any_subset(built, tmp_path):
    d, c = built
    sub = quiet(make_composites, d.subset([4, 1]), size=32, seed=0, cache_dir=tmp_path)
    assert np.array_equal(sub.images, c.images[[4, 1]]) and np.array_equal(sub.masks, c.masks[[4, 1]])

def test_nothing_opaque_is_skipped_with_a_warning(fixture_copy, tmp_path):
    root = fixture_copy("openclipart")
    Image.new("LA", (12, 10), (0, 100)).save(root / "png/food/ghost_01.png")   # alpha 100 everywhere: nothing > 127
    shutil.copy(root / "svg/food/tomato_01.svg", root / "svg/food/ghost_01.svg")
    d = quiet(load_openclipart, root)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = make_composites(d, size=32, cache_dir=tmp_path)
    assert len(c) == len(d) - 1 and "ghost_01.png" not in " ".join(c.meta.path)
    assert any("skipped 1 drawing(s)" in str(x.message) and "food/ghost_01.png" in str(x.message) for x in w)

def test_bad_arguments_are_one_line_errors(built):
    d, c = built
    for kw, msg in [(dict(size=4), "size must be an integer >= 8, got 4"), (dict(seed=-1), "seed must be an integer >= 0, got -1")]:
        with pytest.raises(ValueError, match=msg): make_composites(d, **kw)
    with pytest.raises(ValueError, match="must be PNG paths"): make_composites(c)
    with pytest.raises(ValueError, match="unknown composite task 'shapes'; choose from comp-recreation"): composite_split("shapes")

def test_tasks_use_no_benchmark_normal_category():
    from cmg_nb.experiments import OPENCLIPART_TASKS
    bench = {g for gs in OPENCLIPART_TASKS.values() for g in gs}
    assert COMPOSITE_TASKS == {"comp-recreation": ["recreation", "education", "science"],
                               "comp-signs": ["signs_and_symbols"], "comp-shapes": ["shapes"]}
    assert not bench & {g for gs in COMPOSITE_TASKS.values() for g in gs}

def test_split_of_a_task(fixture_copy, tmp_path):
    root = fixture_copy("openclipart")
    for i in range(12):                                                          # a `shapes` category: copies of two drawings
        src = ["animals/birds/bird_of_peace_01", "science/medicine/barattolo_di_pillole_arc_01"][i % 2]
        for ext in ("png", "svg"):
            (root / ext / "shapes").mkdir(exist_ok=True)
            shutil.copy(root / ext / f"{src}.{ext}", root / ext / "shapes" / f"shape_{i:02d}.{ext}")
    sp = quiet(composite_split, "comp-shapes", root=root, size=32, max_normal=10, max_anomalies=4, cache_dir=tmp_path / "a")
    assert (len(sp.train), len(sp.valid), len(sp.test), int(sp.test_labels.sum())) == (7, 1, 6, 4)
    assert set(sp.train.groups) | set(sp.valid.groups) == {"shapes"} and "shapes" not in sp.anomaly_groups
    assert set(sp.test.groups[sp.test_labels == 0]) == {"shapes"} and "shapes" not in set(sp.test.groups[sp.test_labels == 1])
    sp2 = quiet(composite_split, "comp-shapes", root=root, size=32, max_normal=10, max_anomalies=4, cache_dir=tmp_path / "b")
    assert np.array_equal(sp2.test.images, sp.test.images) and sp2.train.meta.path.tolist() == sp.train.meta.path.tolist()
