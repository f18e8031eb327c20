"Loaders on their fixtures: good input, and every kind of bad input gives one clear error naming the problem."
import json, warnings
import numpy as np
import pytest
from cmg_nb.data import one_class_split, ImageReadError, CaptionedImages, to_float_tensor
from cmg_nb.scenes import make_scenes
from cmg_nb.loaders import load_folder, load_ucm_captions, load_wikipedia, load_class_coco
from conftest import FIXTURES

def test_public_imports():
    import cmg_nb.data as d, cmg_nb.scenes as s, cmg_nb.loaders as l
    for m, names in ((s, "make_scenes"), (l, "load_folder load_ucm_captions load_wikipedia load_class_coco"), (d, "one_class_split read_image")):
        for name in names.split(): assert callable(getattr(m, name)), (m.__name__, name)

# ---- folder
def test_folder_missing_image(fixture_copy):
    root = fixture_copy("folder"); (root / "imgs/cat2.jpg").unlink()
    with pytest.raises(ImageReadError, match="image not found: .*cat2.jpg"): load_folder(root)
    with pytest.warns(UserWarning, match="missing"):
        d = load_folder(root, on_error="skip")
    assert "cat2.jpg" not in " ".join(map(str, d.images))

def test_folder_corrupt_image_named():
    with pytest.raises(ImageReadError, match="corrupt.png"): load_folder(FIXTURES / "folder")

def test_folder_empty_caption(fixture_copy):
    root = fixture_copy("folder")
    (root / "captions.csv").write_text("image,caption,group\nimgs/cat2.jpg,  ,cat\n")
    with pytest.raises(ValueError, match="line 2: empty caption for imgs/cat2.jpg"): load_folder(root)

def test_folder_bad_columns_and_groups(fixture_copy):
    root = fixture_copy("folder")
    (root / "captions.csv").write_text("image,text\nimgs/cat2.jpg,a cat\n")
    with pytest.raises(ValueError, match="missing column.*caption.*group"): load_folder(root)
    (root / "captions.csv").write_text("image,caption,group\nimgs/cat2.jpg,a cat,cat\nimgs/cat2.jpg,a dog,dog\n")
    with pytest.raises(ValueError, match="is in group 'dog' here but 'cat' earlier"): load_folder(root)
    (root / "captions.csv").write_text("image,caption,group\n../../etc/passwd,x,cat\n")
    with pytest.raises(ValueError, match="points outside"): load_folder(root)

def test_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"): load_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no captions.csv"): load_folder(tmp_path)

def test_folder_image_modes():
    with pytest.warns(UserWarning):
        d = load_folder(FIXTURES / "folder", on_error="skip")
    arrs = [d.image(i) for i in range(len(d))]
    assert all(a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 for a in arrs)  # L, RGBA, P, BMP -> RGB
    assert d.captions[-1] == ["a dog, barking"]                                        # quoted CSV field
    x = to_float_tensor(d.to_array(16))
    assert x.shape == (len(d), 3, 16, 16) and float(x.max()) <= 1.0

# ---- UCM
def test_ucm(fixture_copy):
    d = load_ucm_captions(FIXTURES / "ucm")
    assert d.groups.tolist() == ["agricultural", "agricultural", "airplane", "tenniscourt"]
    assert d.captions[1] == ["Many green crops are in the farmland ."]          # blank sentence dropped
    assert d.meta.split.tolist() == ["train", "val", "test", "train"]
    root = fixture_copy("ucm")
    js = json.loads((root / "dataset.json").read_text()); js["images"][0]["filename"] = "farm.tif"
    (root / "dataset.json").write_text(json.dumps(js))
    with pytest.raises(ValueError, match="filename 'farm.tif'"): load_ucm_captions(root)
    js["images"][0]["filename"] = "1.tif"; js["images"][0]["sentences"] = [{"raw": " "}]
    (root / "dataset.json").write_text(json.dumps(js))
    with pytest.raises(ValueError, match="1.tif has no non-empty sentence"): load_ucm_captions(root)
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"): load_ucm_captions(root)

def test_ucm_corrupt_image(fixture_copy):
    root = fixture_copy("ucm"); (root / "imgs/101.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="101.tif"): load_ucm_captions(root)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        assert len(load_ucm_captions(root, on_error="skip")) == 3

# ---- Wikipedia
def test_wikipedia(fixture_copy):
    d = load_wikipedia(FIXTURES / "wikipedia")
    assert d.captions[0] == ["Tom & Jerry is an animated series drawn by hand."]
    assert d.captions[1] == ["The café cell divides & grows."]
    assert d.captions[2] == ["The battle of Hastings was fought in 1066."]   # unclosed <document>
    root = fixture_copy("wikipedia")
    with open(root / "testset_txt_img_cat.list", "a") as f: f.write("abc\tdef\t11\n")
    with pytest.raises(ValueError, match="category '11' is not in 1..10"): load_wikipedia(root)
    (root / "testset_txt_img_cat.list").write_text("abc def 3\n")
    with pytest.raises(ValueError, match="expected text_id<TAB>img_id<TAB>category"): load_wikipedia(root)

def test_wikipedia_empty_text(fixture_copy):
    root = fixture_copy("wikipedia")
    (root / "texts/0a1b2c3d4e5f60718293a4b5c6d7e8f9.xml").write_text("<document><text>   </text></document>")
    with pytest.raises(ValueError, match="empty <text>"): load_wikipedia(root)
    (root / "texts/0a1b2c3d4e5f60718293a4b5c6d7e8f9.xml").unlink()
    with pytest.raises(FileNotFoundError, match="0a1b2c3d4e5f60718293a4b5c6d7e8f9.xml not found"): load_wikipedia(root)

# ---- Class-COCO
def test_class_coco(fixture_copy):
    d = load_class_coco(FIXTURES / "coco")
    assert d.meta.image_id.tolist() == [1, 2, 4]
    root = fixture_copy("coco"); (root / "annotations/instances_train2017.json").unlink()
    with pytest.raises(FileNotFoundError, match="instances_train2017.json not found"): load_class_coco(root)
    with pytest.raises(ValueError, match="group_by"): load_class_coco(FIXTURES / "coco", group_by="colour")

# ---- split
def test_split_unknown_group_and_disjoint():
    d = make_scenes(300, size=16, seed=1)
    with pytest.raises(ValueError, match=r"unknown normal group\(s\): 'hexagon'; available: circle"):
        one_class_split(d, ["hexagon"])
    sp = one_class_split(d, ["circle", "ring"], seed=3)
    def key(ds): return {ds.images[i].tobytes() for i in range(len(ds))}
    assert not key(sp.train) & key(sp.test) and not key(sp.valid) & key(sp.test) and not key(sp.train) & key(sp.valid)
    assert set(sp.train.groups) <= {"circle", "ring"} and set(sp.valid.groups) <= {"circle", "ring"}
    assert (sp.test_labels == ~np.isin(sp.test.groups, ["circle", "ring"])).all()

def test_captioned_images_validation():
    im = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="item 1 .* has no non-empty caption"): CaptionedImages(im, ["a", ["", " "]], ["g", "g"])
    with pytest.raises(ValueError, match="empty group"): CaptionedImages(im, ["a", "b"], ["g", " "])
    with pytest.raises(ValueError, match="2 images but 1 caption"): CaptionedImages(im, ["a"], ["g", "g"])

# ---- the resize policy (issue 16: images were squashed)
def test_resize_policy_shared_by_training_and_scoring(tmp_path):
    "A tall image keeps its aspect (padded with its border colour), and the training and scoring paths see the same pixels."
    from PIL import Image
    from cmg_nb.inputs import as_image_tensor
    im = np.zeros((60, 30, 3), np.uint8); im[...] = (40, 60, 200); im[20:40, 5:25] = (220, 30, 30)
    f = tmp_path / "tall.png"; Image.fromarray(im).save(f)
    train = CaptionedImages([f], ["a red box"], ["box"]).to_array(32)[0]
    assert (train[:, :8] == (40, 60, 200)).all() and (train[:, 24:] == (40, 60, 200)).all()    # bands of the border colour
    red = (train == (220, 30, 30)).all(-1)
    assert red[12:20, 12:20].all()
    rows, cols = np.flatnonzero(red.any(1)), np.flatnonzero(red.any(0))
    assert len(rows) == len(cols) and rows.mean() == cols.mean() == 15.5                    # the box stays a centred square
    score = (as_image_tensor([str(f)], 32)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(score, train)
    np.testing.assert_array_equal((as_image_tensor(Image.open(f), 32)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), train)
