"""Open Clip Art loader on its fixture (`tests/fixtures/openclipart/`, written by `make_openclipart.py`) and, where
Debian's packages are installed, on the real files: groups, exact captions, skipped files named in one warning,
one-line errors naming the problem, the on-disk cache of decoded images (cached == freshly decoded), subsets, and the
object masks the cache keeps from the PNGs' alpha channel (the image's geometry exactly, checked independently)."""
import os, struct, warnings, zlib
from pathlib import Path
import numpy as np
import pytest
import cmg_nb.openclipart as ocm
from cmg_nb.openclipart import (load_openclipart, svg_text, openclipart_captions, OPENCLIPART_ROOT,
                                OPENCLIPART_BACKGROUND)
from cmg_nb.data import read_image, read_image_alpha, resize_image, ImageReadError
from conftest import FIXTURES

OC = FIXTURES / "openclipart"
SMALL = 50_000                     # the fixture's "huge" PNG is 300x300 = 90,000 pixels
CAPTIONS = [["bird of peace", "bird of peace, bird, dove"],
            ["Sleeping cat", "Sleeping cat, cat, house pet", "A cat asleep on a cushion."],
            ["Lézard", "Lézard, reptile"],
            ["Salt & Pepper", "Salt & Pepper, salt, pepper", "Two shakers & a plate"],
            ["tomato"],
            ["Barattolo di pillole"],
            ["Bandiera d'Italia", "Bandiera d'Italia, flag, italy, europe"]]

def load(root=OC, **kw):
    "The loader with the fixture's small max_pixels, its (expected) warnings silenced."
    kw.setdefault("max_pixels", SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_openclipart(root, **kw)

def oc_warnings(fn):
    "Run `fn`; return (result, the loader's warning messages)."
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(r.message) for r in rec if str(r.message).startswith("Open Clip Art")]

def png_header(w, h):
    "A PNG whose header declares w x h, with (almost) no pixel data: decoding it fails, opening it need not."
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))

def add_file(root, rel, png_bytes, svg=True):
    p = root / "png" / f"{rel}.png"; p.parent.mkdir(parents=True, exist_ok=True); p.write_bytes(png_bytes)
    if svg:
        s = root / "svg" / f"{rel}.svg"; s.parent.mkdir(parents=True, exist_ok=True)
        s.write_text(f'<svg><metadata><rdf:RDF><cc:Work><dc:title>{Path(rel).name}</dc:title></cc:Work></rdf:RDF></metadata></svg>')
    return p

def fresh(data, size):
    return np.stack([resize_image(read_image(p), size) for p in data.images])

# ---- reading the fixture
def test_public_api():
    assert ocm.__all__ == ["OPENCLIPART_ROOT", "OPENCLIPART_BACKGROUND", "svg_text", "openclipart_captions", "load_openclipart"]
    assert OPENCLIPART_ROOT == "/usr/share/openclipart" and OPENCLIPART_BACKGROUND == (255, 255, 255)

def test_groups_meta_and_captions():
    d = load()
    assert d.name == "openclipart" and len(d) == 7
    assert d.groups.tolist() == ["animals"] * 3 + ["food"] * 2 + ["science", "signs_and_symbols"]
    assert d.captions == CAPTIONS
    assert list(d.meta.columns) == ["path", "svg", "category", "subcategory", "stem", "title", "width", "height"]
    assert d.meta.subcategory.tolist() == ["birds", "", "", "", "", "medicine", "flags/europe"]
    assert d.meta.stem.tolist()[4:6] == ["tomato_01", "barattolo_di_pillole_arc_01"]
    assert d.meta.title.tolist()[4] == ""                                      # the SVG has none; the caption is the stem
    assert (d.meta.width.tolist(), d.meta.height.tolist()) == ([12] * 7, [10] * 7)
    assert d.images[0] == OC / "png/animals/birds/bird_of_peace_01.png"
    assert d.meta.svg[6] == str(OC / "svg/signs_and_symbols/flags/europe/italy_flag_01.svg")
    assert d._cache == {}                                                       # no cache_size: nothing decoded

def test_transparency_is_white():
    im = load(categories=["animals"]).image(0)                                 # the RGBA bird
    assert tuple(im[0, 0]) == OPENCLIPART_BACKGROUND and im[5, 5].tolist() == [0, 0, 200]

def test_noise_dropped_from_the_noisy_svg():
    t = svg_text(OC / "svg/animals/birds/bird_of_peace_01.svg", category="animals")
    assert t == dict(title="bird of peace", description="", keywords=["bird", "dove"])
    flat = " ".join([t["title"], t["description"]] + t["keywords"])
    for noise in ("HASH", "Mauro Olivo", "Open Clip Art", "Inkscape", "unsorted", "animals", "hash"):
        assert noise not in flat

def test_malformed_xml_and_encodings():
    assert svg_text(OC / "svg/food/salt_and_pepper_01.svg")["title"] == "Salt & Pepper"   # raw "&": regex fall-back
    assert svg_text(OC / "svg/animals/lizard_02.svg")["title"] == "Lézard"                 # ISO-8859-1
    assert svg_text(OC / "svg/signs_and_symbols/flags/europe/italy_flag_01.svg")["title"] == "Bandiera d'Italia"

def test_captions_rules():
    assert openclipart_captions(dict(title="", description="", keywords=[]), "food", "hummer_01") == ["hummer"]
    assert openclipart_captions({}, "signs_and_symbols") == ["signs and symbols"]           # never empty
    assert openclipart_captions(dict(title="Dog", description="dog", keywords=["dog", "pet", "Pet", "animals"]),
                                "animals") == ["Dog", "Dog, pet"]

def test_categories_and_max_per_group():
    assert load(categories=["food", "science"]).groups.tolist() == ["food", "food", "science"]
    assert load(categories="food").group_names == ["food"]
    a, b = load(max_per_group=1, seed=0), load(max_per_group=1, seed=0)
    assert a.images == b.images and a.group_names == ["animals", "food", "science", "signs_and_symbols"] and len(a) == 4
    picks = {tuple(map(str, load(max_per_group=1, seed=s).images)) for s in range(6)}
    assert len(picks) > 1                                                      # the seed chooses the sample
    assert len(load(max_per_group=2)) == 6                                     # 2 + 2 + 1 + 1

# ---- files the loader skips, and says so
def test_skipped_files_named_in_one_warning_each():
    d, msgs = oc_warnings(lambda: load_openclipart(OC, max_pixels=SMALL))
    assert len(d) == 7 and len(msgs) == 2
    assert "skipped 1 PNG(s) without an SVG: animals/dog_01.png" in msgs[0]
    assert "larger than max_pixels=50,000" in msgs[1] and "signs_and_symbols/stop_sign_huge_.png (300x300)" in msgs[1]
    d, msgs = oc_warnings(lambda: load_openclipart(OC))                       # the default 20 MP keeps it
    assert len(d) == 8 and len(msgs) == 1

def test_many_skipped_files_first_few_and_count(fixture_copy):
    root = fixture_copy("openclipart")
    for i in range(8): add_file(root, f"food/big_{i:02d}", png_header(400, 400 + i))
    d, msgs = oc_warnings(lambda: load_openclipart(root, max_pixels=SMALL))
    big = [m for m in msgs if "max_pixels" in m]
    assert len(big) == 1 and "skipped 9 image(s)" in big[0] and "and 4 more" in big[0]
    assert "food/big_00.png (400x400)" in big[0] and len(d) == 7

def test_decompression_bombs_are_never_decoded(fixture_copy, monkeypatch, tmp_path):
    root = fixture_copy("openclipart")
    add_file(root, "signs_and_symbols/bomb_01", png_header(30000, 30000))     # 900 MP: PIL refuses even to open it
    add_file(root, "signs_and_symbols/large_01", png_header(12000, 8000))     # 96 MP: PIL warns; above max_pixels
    decoded = []
    def spy(p): decoded.append(Path(p).name); return read_image_alpha(p)
    monkeypatch.setattr(ocm, "read_image_alpha", spy)
    d, msgs = oc_warnings(lambda: load_openclipart(root, cache_size=8, cache_dir=tmp_path))
    assert len(d) == 8 and not {"bomb_01.png", "large_01.png"} & set(decoded) and len(decoded) == 8
    big = [m for m in msgs if "max_pixels" in m]
    assert len(big) == 1 and "bomb_01.png (30000x30000)" in big[0] and "large_01.png (12000x8000)" in big[0]

def test_broken_pngs(fixture_copy, tmp_path):
    root = fixture_copy("openclipart")
    add_file(root, "food/junk_01", b"not a png at all")                        # header unreadable
    d, msgs = oc_warnings(lambda: load_openclipart(root, max_pixels=SMALL))
    assert len(d) == 7 and any("header cannot be read: food/junk_01.png" in m for m in msgs)
    with pytest.raises(ImageReadError, match="junk_01.png"): load(root, on_error="raise", categories=["food"])
    (root / "png/food/junk_01.png").unlink()
    add_file(root, "food/truncated_01", png_header(8, 8))                       # header fine, pixels missing
    d, msgs = oc_warnings(lambda: load_openclipart(root, max_pixels=SMALL, cache_size=8, cache_dir=tmp_path))
    assert len(d) == 7 and "truncated_01.png" not in " ".join(map(str, d.images))
    assert any("cannot be decoded" in m and "truncated_01.png" in m for m in msgs)
    assert d._cache[8].shape == (7, 8, 8, 3) and np.array_equal(d._cache[8], fresh(d, 8))
    with pytest.raises(ImageReadError, match="cannot decode image .*truncated_01.png"):
        load(root, on_error="raise", categories=["food"], cache_size=8, cache_dir=tmp_path)

# ---- errors: one line, naming the problem
def _one_line(excinfo, *parts):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for p in parts: assert p in msg, msg

def test_errors(tmp_path, fixture_copy):
    with pytest.raises(FileNotFoundError) as e: load_openclipart(tmp_path / "nowhere")
    _one_line(e, str(tmp_path / "nowhere"), "apt-get install openclipart-png openclipart-svg")
    (tmp_path / "half" / "png").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e: load_openclipart(tmp_path / "half")
    _one_line(e, str(tmp_path / "half" / "svg"), "apt-get install openclipart-png openclipart-svg")
    (tmp_path / "other" / "svg").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e: load_openclipart(tmp_path / "other")
    _one_line(e, str(tmp_path / "other" / "png"), "apt-get install")
    with pytest.raises(ValueError) as e: load(categories=["animal", "plants"])
    _one_line(e, "unknown categories 'animal', 'plants'", "available: animals, food, science, signs_and_symbols")
    with pytest.raises(ValueError) as e: load(categories=["science"], max_pixels=100)
    _one_line(e, "no image left", "science")
    with pytest.raises(ValueError) as e: load(categories=[])
    _one_line(e, "no image left")
    with pytest.raises(FileNotFoundError) as e: load_openclipart(OC, on_error="raise", max_pixels=SMALL)
    _one_line(e, "dog_01.png has no SVG", "svg/animals/dog_01.svg")
    with pytest.raises(ValueError) as e: load(on_error="ignore")
    _one_line(e, "on_error must be 'raise' or 'skip'")
    with pytest.raises(ValueError) as e: load(max_per_group=0)
    _one_line(e, "max_per_group must be >= 1")
    with pytest.raises(ValueError) as e: load(cache_size=0)
    _one_line(e, "cache_size must be >= 1")

# ---- the cache of decoded images
def test_cache_second_load_reads_the_npz(tmp_path, monkeypatch):
    d1 = load(cache_size=16, cache_dir=tmp_path)
    assert d1._cache[16].dtype == np.uint8 and d1._cache[16].shape == (7, 16, 16, 3)
    assert np.array_equal(d1._cache[16], fresh(d1, 16))                      # cached == what to_array computes
    assert d1.to_array(16) is d1._cache[16] and isinstance(d1.images[0], Path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"                        # no temporary file left behind
    def boom(p): raise AssertionError(f"decoded {p} although it is cached")
    monkeypatch.setattr(ocm, "read_image_alpha", boom)
    d2 = load(cache_size=16, cache_dir=tmp_path)
    assert np.array_equal(d2._cache[16], d1._cache[16]) and d2.captions == d1.captions
    assert np.array_equal(d2.masks, d1.masks) and d2.masks.shape == (7, 16, 16)
    with pytest.raises(AssertionError, match="decoded"): load(cache_size=12, cache_dir=tmp_path)   # another size: decoded

def test_cache_key_follows_the_files(fixture_copy, tmp_path):
    root, cache = fixture_copy("openclipart"), tmp_path / "cache"
    load(root, cache_size=8, cache_dir=cache)
    p = root / "png/food/tomato_01.png"; st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))                  # a changed file: a new cache
    d = load(root, cache_size=8, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2 and np.array_equal(d._cache[8], fresh(d, 8))
    load(root, cache_size=8, cache_dir=cache, categories=["food"])             # other files: another one
    assert len(list(cache.glob("*.npz"))) == 3

def test_unreadable_cache_is_rebuilt(tmp_path):
    load(cache_size=8, cache_dir=tmp_path)
    (f,) = tmp_path.glob("*.npz"); f.write_bytes(b"garbage")
    d, msgs = oc_warnings(lambda: load_openclipart(OC, max_pixels=SMALL, cache_size=8, cache_dir=tmp_path))
    assert any("ignoring unreadable image cache" in m for m in msgs) and np.array_equal(d._cache[8], fresh(d, 8))
    with np.load(f) as z: assert z["images"].shape == (7, 8, 8, 3) and z["masks"].shape == (7, 8, 8)   # rewritten

def test_default_cache_dir_respects_cmg_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CMG_CACHE_DIR", str(tmp_path))
    load(cache_size=8)
    assert len(list((tmp_path / "openclipart").glob("openclipart-8px-*.npz"))) == 1

def test_subset_and_add_keep_the_cache_consistent(tmp_path):
    d = load(cache_size=16, cache_dir=tmp_path)
    s = d.subset([5, 0, 2])
    assert np.array_equal(s._cache[16], fresh(s, 16)) and s.captions == [CAPTIONS[5], CAPTIONS[0], CAPTIONS[2]]
    food = d.subset(d.groups == "food")
    assert np.array_equal(food.to_array(16), d._cache[16][3:5])
    both = s + food
    assert np.array_equal(both._cache[16], fresh(both, 16)) and both.groups.tolist() == ["science", "animals", "animals", "food", "food"]
    assert 16 not in (s + load())._cache                                       # one side without that size: not cached

# ---- object masks: the alpha channel, in the cached image's geometry
def bbox(m):
    r, c = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return np.array([r[0], r[-1], c[0], c[-1]])

def test_masks_are_the_alpha_in_the_image_geometry(tmp_path):
    from PIL import Image
    d = load(cache_size=24, cache_dir=tmp_path)
    assert d.masks.dtype == bool and d.masks.shape == (7, 24, 24) and d.masks_array(24) is d.masks
    alpha = np.asarray(Image.open(OC / "png/animals/birds/bird_of_peace_01.png").getchannel("A")) > 127   # 10x12
    assert alpha.shape == (10, 12) and alpha[2:8, 3:9].all() and alpha.sum() == 36
    expect = np.zeros((24, 24), bool)
    expect[2:22] = alpha.repeat(2, 0).repeat(2, 1)                              # x2 -> 20x24, 2 rows of padding each side
    assert np.array_equal(d.masks[0], expect)
    for size in (24, 16, 7):                                                     # also scales that are not whole numbers
        d = load(cache_size=size, cache_dir=tmp_path)
        fg = (d._cache[size][0] != 255).any(-1)                                 # where the cached bird is not white
        assert np.abs(bbox(d.masks[0]) - bbox(fg)).max() <= 1, size
        assert not (d.masks[0] & ~fg).any(), size                               # the mask never covers background
        h = round(10 * size / 12); top = round((size - h) / 2)                   # PIL's pad: centred, rounded half to even
        pic = np.zeros((size, size), bool); pic[top:top + h] = True
        assert all(np.array_equal(m, pic) for m in d.masks[1:]), size           # no alpha: the picture, not the padding

def test_masks_follow_subsets_and_failures(fixture_copy, tmp_path):
    d = load(cache_size=16, cache_dir=tmp_path)
    s = d.subset([5, 0])
    assert np.array_equal(s.masks, d.masks[[5, 0]])
    root = fixture_copy("openclipart")
    add_file(root, "animals/aa_truncated_01", png_header(8, 8))                # sorts first; cannot be decoded
    d2, _ = oc_warnings(lambda: load_openclipart(root, max_pixels=SMALL, cache_size=16, cache_dir=tmp_path / "c2"))
    assert len(d2) == 7 and np.array_equal(d2.masks, d.masks)                   # the failed item's mask is dropped with it

# ---- the installed packages
@pytest.mark.skipif(not Path(OPENCLIPART_ROOT, "png").is_dir(),
                    reason="Debian's Open Clip Art is not installed (apt-get install openclipart-png openclipart-svg)")
def test_real_packages_animals_metadata():
    d = load_openclipart(categories=["animals"])                              # headers and SVG text only
    assert d.group_names == ["animals"] and len(d) > 300 and d._cache == {}
    i = d.meta.stem.tolist().index("bird_of_peace_mauro_oliv_01")
    assert d.meta.title[i] == "bird of peace" and d.meta.subcategory[i] == "birds"
    assert d.captions[i] == ["bird of peace", "bird of peace, animal, bird"]   # not "Mauro Olivo", not HASH(0x8a41038)
    flat = " ".join(c for cs in d.captions for c in cs)
    for noise in ("HASH(", "Open Clip Art Library", "Created with Inkscape", "@", "http"):
        assert noise not in flat
