"""Media room: hashing, query variants, hash lists, index, matching, CLI contract, never-the-media.

Uses only the benign shared samples (bridge photo, labelme photos, chair/pattern/doorknob clips) and
generated abstract images."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pdqhash", reason="pdqhash not installed (make install)")
pytest.importorskip("av", reason="PyAV not installed (make install)")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from kalasag.cli.media import app  # noqa: E402
from kalasag.media import (  # noqa: E402
    Matcher, MediaError, MediaStore, PdqIndex, banked_hashes, hamming, hash_image, hash_video, load_media_config,
    pdq_rgb, query_variants, read_list, unletterbox,
)
from kalasag.media.listio import ListEntry  # noqa: E402
from kalasag.media import robustness as T  # noqa: E402
from kalasag.media.hashing import load_rgb  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
needs_media = pytest.mark.skipif(not MEDIA.is_dir(), reason=f"shared media samples not found at {MEDIA}")
PDQ = MEDIA / "pdq"
VIDEO = MEDIA / "video"
BRIDGE = PDQ / "bridge-mods" / "aaa-orig.jpg"
# PdqSignal.get_examples()[0] in python-threatexchange: pdqhash + PIL on aaa-orig.jpg (research note §1.3)
PYTX_BRIDGE = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
runner = CliRunner()
# leading bytes of image/video files: JPEG, PNG, GIF, BMP, RIFF (WebP/AVI), Matroska/WebM, TIFF, FLV, MPEG-PS
MEDIA_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF", b"\x1aE\xdf\xa3", b"II*\x00", b"MM\x00*",
               b"FLV", b"\x00\x00\x01\xba")


def cfg(**kw):
    return load_media_config(**kw)


def save(rgb: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb).save(path)
    return path


# ------------------------------------------------------------------ hashing
@needs_media
def test_bridge_hash_equals_pytx_golden_vector_and_is_stable():
    a, b = hash_image(BRIDGE), hash_image(BRIDGE)
    assert a.pdq_hex == PYTX_BRIDGE
    assert (a.pdq, a.quality, a.md5, a.sha256) == (b.pdq, b.quality, b.md5, b.sha256)
    assert a.quality == 100 and (a.width, a.height) == (1600, 1004)


@needs_media
def test_hashes_within_documented_distance_of_published_reference():
    rows = list(csv.DictReader((PDQ / "expected.csv").open()))
    assert len(rows) == 20
    dists = {r["file"]: hamming(hash_image(PDQ / r["file"]).pdq_hex, r["pdq_hex"]) for r in rows}
    # docs/media.md: cpp-reference 2-8 bits, python-reference 0-12 bits (pdq/README conformance: <= 10 for C++)
    assert max(d for f, d in dists.items() if f.startswith("dih/")) <= 10
    assert max(dists.values()) <= 12
    assert dists["bridge-mods/square-512x512.jpg"] == 0


@needs_media
def test_low_quality_is_flagged_not_matched(tmp_path):
    q3 = PDQ / "labelme-subset" / "q0003.jpg"
    assert hash_image(q3).quality < 50
    lst = tmp_path / "l.csv"
    lst.write_text(f"pdq_hex\n{hash_image(q3).pdq_hex}\n")
    r = runner.invoke(app, ["match", str(q3), "--list", str(lst)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1] == f"{q3},false,,,low_quality"


def test_hamming_and_bad_hash():
    assert hamming("0" * 64, "f" + "0" * 63) == 4
    with pytest.raises(MediaError, match="not a PDQ hash"):
        hamming("xyz", "0" * 64)


# ------------------------------------------------------------------ variants
@needs_media
def test_dihedral_reference_images_match_original_only_through_variants():
    orig = hash_image(PDQ / "dih" / "bridge-1-original.jpg").pdq
    expected = {"bridge-2-rotate-90.jpg", "bridge-3-rotate-180.jpg", "bridge-4-rotate-270.jpg",
                "bridge-5-flipx.jpg", "bridge-6-flipy.jpg", "bridge-7-flip-plus-1.jpg", "bridge-8-flip-minus-1.jpg"}
    c = cfg(crops=[], uncrops=[], rotations=[], unletterbox=False)
    seen = set()
    for name in expected:
        rgb = load_rgb(PDQ / "dih" / name)
        vs = query_variants(rgb, c)
        assert hamming(vs[0].pdq, orig) > 31, name  # plain PDQ misses it
        best = min(vs, key=lambda v: hamming(v.pdq, orig))
        assert hamming(best.pdq, orig) <= 10, name
        seen.add(best.name)
    assert seen == {"rot90", "rot180", "rot270", "flip_h", "flip_v", "transpose", "transverse"}


def test_unletterbox_removes_bars_of_any_colour():
    img = T.generated_image(1, (200, 100))
    boxed = np.concatenate([np.full((20, 200, 3), 7, np.uint8), img, np.full((20, 200, 3), 7, np.uint8)])
    trimmed = unletterbox(boxed)
    assert trimmed.shape == img.shape and np.array_equal(trimmed, img)
    pillar = np.concatenate([np.full((100, 30, 3), 250, np.uint8), img, np.full((100, 30, 3), 250, np.uint8)], axis=1)
    assert unletterbox(pillar).shape == img.shape
    assert unletterbox(img) is None


@needs_media
@pytest.mark.parametrize("transform,plain_misses", [
    ("letterbox_10", True), ("mirror", True), ("rotate_2", True), ("crop_95", True), ("grey", False), ("jpeg_q20", False),
])
def test_transformed_bridge_matches_through_a_variant(tmp_path, transform, plain_misses):
    rgb = T.resize(load_rgb(BRIDGE), 0.5)  # 800×502: same outcome as full size, 4× faster
    bank = tmp_path / "bank.csv"
    bank.write_text(f"pdq_hex,entry,category\n{pdq_rgb(rgb)[0].hex()},bridge,test\n")
    q = save(T.TRANSFORMS[transform](rgb), tmp_path / f"{transform}.png")
    m = Matcher.from_list_file(bank, cfg())
    res = m.match_image(str(q))
    assert res.matched and res.best.entry == "bank.csv:bridge", transform
    assert res.best.distance <= 31
    plain = pdq_rgb(load_rgb(q))[0]
    assert (hamming(plain, pdq_rgb(rgb)[0]) > 31) == plain_misses


@needs_media
def test_unrelated_images_do_not_match_even_with_all_variants(tmp_path):
    photos = [BRIDGE] + sorted((PDQ / "labelme-subset").glob("*.jpg"))
    gens = [save(T.generated_image(s), tmp_path / f"g{s}.png") for s in range(4)]
    files = photos + gens
    hashes = [hash_image(p) for p in files]
    bank = tmp_path / "bank.csv"
    bank.write_text("pdq_hex,entry\n" + "".join(f"{h.pdq_hex},{Path(h.path).name}\n" for h in hashes if h.quality >= 50))
    m = Matcher.from_list_file(bank, cfg())
    for p in files:
        res = m.match_image(str(p))
        assert {h.ref for h in res.hits} <= {p.name}, (p, [h.entry for h in res.hits])


# ------------------------------------------------------------------ bank variants and regions
def _banked_and_plain(rgb):
    h, q = pdq_rgb(rgb)
    c = cfg()
    # whole-picture query variants only (partial variants: tests test_*_through_a_partial_*)
    nop = cfg(partial_match=False)
    banked = Matcher.from_entries([ListEntry("orig", "image", 1, pdq=h, quality=q, variants=banked_hashes(rgb, c))], nop, "bank")
    plain = Matcher.from_entries([ListEntry("orig", "image", 1, pdq=h, quality=q)], nop, "bank")  # a hash-only list
    return banked, plain


def test_banked_crop_matches_its_bank_variant_but_a_hash_only_list_misses_it():
    rgb = T.generated_image(11)
    banked, plain = _banked_and_plain(rgb)
    copy = T.TRANSFORMS["crop_90"](rgb)
    assert hamming(pdq_rgb(copy)[0], pdq_rgb(rgb)[0]) > 31  # plain PDQ misses the crop
    r = banked.match_rgb(copy)
    # the crop is pixel for pixel the banked 90 % centre crop: distance 0 through "original~crop90"
    assert (r.best.entry, r.best.variant, r.best.distance) == ("bank:orig", "original~crop90", 0)
    assert r.best.matched_variants[0] == {"variant": "original~crop90", "distance": 0}
    assert all(v["distance"] <= 31 for v in r.best.matched_variants)
    assert not plain.match_rgb(copy).matched  # query variants alone do not reach this one


def test_corner_overlay_matches_through_the_regions_it_leaves_intact():
    rgb = T.generated_image(11)
    banked, plain = _banked_and_plain(rgb)
    copy = T.TRANSFORMS["overlay_10"](rgb)  # a box over the lower-right 31.6 % of each side
    r = banked.match_rgb(copy)
    regions = {v["variant"] for v in r.best.matched_variants}
    # 4 strips + 4 quadrants + 9 tiles; the box spoils the bottom and right strips, quadrant r1c1, tile r2c2
    spoiled = {"region:bottom67", "region:right67", "region:tile2:r1c1", "region:tile3:r2c2"}
    assert r.best.variant == "regions:13" and regions & spoiled == set() and len(regions) == 13
    assert r.best.distance == 0  # the intact regions are the same pixels
    assert not plain.match_rgb(copy).matched


def test_rotated_copy_matches_turned_back_and_cropped_to_a_bank_level():
    rgb = T.generated_image(11)
    banked, plain = _banked_and_plain(rgb)
    copy = T.TRANSFORMS["rotate_5"](rgb)
    # 640×480 turned 5°: the largest centred crop without empty corners keeps 89.95 % -> bank level 90 %
    r = banked.match_rgb(copy)
    assert r.best.variant == "rotate-5_crop90~crop90" and r.best.distance <= 8
    p = plain.match_rgb(copy)  # hash-only list: the filled turn-back still matches, farther away
    assert p.best.variant == "rotate-5_fill" and r.best.distance < p.best.distance <= 31


def test_unrelated_images_do_not_match_banked_variants_or_regions():
    c = cfg()
    photos = [load_rgb(BRIDGE)] if BRIDGE.is_file() else []
    images = photos + [T.generated_image(s, family=f) for f in T.FAMILIES for s in range(3)]
    entries, keep = [], []
    for i, rgb in enumerate(images):
        h, q = pdq_rgb(rgb)
        if q >= 50:
            entries.append(ListEntry(str(i), "image", i, pdq=h, quality=q, variants=banked_hashes(rgb, c)))
            keep.append(i)
    assert len(keep) >= 10
    m = Matcher.from_entries(entries, c, "bank")
    for i in keep:
        for t in ("none", "crop_90", "overlay_10", "jpeg_q20"):
            rgb = images[i] if t == "none" else T.TRANSFORMS[t](images[i])
            refs = {h.ref for h in m.match_rgb(rgb).hits}
            assert refs <= {str(i)}, (i, t, refs)  # never another image
            if t == "none":
                assert refs == {str(i)}


def test_hash_bank_variants_csv_is_a_list_that_match_reads(tmp_path):
    rgb = T.generated_image(11)
    orig = save(rgb, tmp_path / "orig.png")
    r = runner.invoke(app, ["hash", str(orig), "--bank-variants", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert list(rows[0]) == ["path", "kind", "pdq_hex", "quality", "md5", "sha256", "timestamp", "variant"]
    names = [row["variant"] for row in rows]
    # original, 4 bank crops (no bars to remove), the paired low-pass hash, 4 strips, 4 + 9 tiles
    assert names[:6] == ["original", "crop95", "crop90", "crop85", "crop80", "lowpass"] and len(names) == 23
    assert {row["md5"] for row in rows} == {hash_image(orig).md5}
    lst = tmp_path / "bank.csv"
    lst.write_text(r.output)
    [entry] = read_list(lst)
    assert entry.ref == str(orig) and len(entry.variants) == 22
    crop = save(T.TRANSFORMS["crop_90"](rgb), tmp_path / "crop.png")
    r = runner.invoke(app, ["match", str(crop), "--list", str(lst), "--format", "csv"])
    assert r.output.splitlines()[1] == f"{crop},true,bank.csv:{orig},0,original~crop90"


def test_variant_row_without_its_image_names_the_line(tmp_path):
    c = tmp_path / "l.csv"
    c.write_text(f"pdq_hex,entry,variant\n{'1' * 64},a,original\n{'2' * 64},a,crop90\n{'3' * 64},b,crop90\n")
    with pytest.raises(MediaError, match=r"l\.csv:4: variant row 'crop90': no image row for 'b'"):
        read_list(c)
    c.write_text(f"pdq_hex,entry,variant\n{'1' * 64},a,\n{'2' * 64},a,tile2:r0c0\n")
    [e] = read_list(c)
    assert e.variants == [("tile2:r0c0", bytes.fromhex("2" * 64), None)]


def test_lists_add_banks_variants_and_withdraw_drops_them(tmp_path):
    rgb = T.generated_image(12)
    orig = save(rgb, tmp_path / "orig.png")
    crop = T.TRANSFORMS["crop_90"](rgb)
    state = tmp_path / "state"
    r = runner.invoke(app, ["lists", "add", str(orig), "--name", "bank", "--state", str(state)])
    assert r.exit_code == 0, r.output
    st = MediaStore(state)
    assert len(st.variants([1])) == 22  # 4 crops + lowpass + 4 strips + 13 tiles, hashes only
    m = Matcher.from_store(st, cfg())
    assert m.match_rgb(crop).best.variant == "original~crop90"
    st.withdraw("bank", refs=["orig.png"])
    m.refresh()
    assert not m.match_rgb(crop).matched and len(m.bank) == 0 and len(m.regions) == 0 and len(m.paired) == 0


def _hazy(seed: int, grain: float = 30.0) -> np.ndarray:
    """A hazy, grainy benign picture: a generated abstract composition at 12 % contrast plus
    pixel-level grey grain (like a misty seascape shot on film). Strong JPEG wipes the grain, which
    PDQ's 64×64 sampling otherwise folds into its low-frequency bits."""
    rng = np.random.default_rng(seed + 1000)
    x = T.generated_image(seed, size=(256, 256)).astype(np.float32)
    x = 128 + (x - 128) * 0.12 + rng.normal(0, grain, (256, 256, 1))
    return np.uint8(np.clip(x, 0, 255))


def _bank(images: dict[str, np.ndarray], c) -> Matcher:
    entries = []
    for i, (ref, rgb) in enumerate(images.items(), 1):
        h, q = pdq_rgb(rgb)
        entries.append(ListEntry(ref, "image", i, pdq=h, quality=q, variants=banked_hashes(rgb, c)))
    return Matcher.from_entries(entries, c, "bank")


def test_strong_jpeg_of_a_grainy_picture_matches_only_through_the_lowpass_variant():
    rgb = _hazy(1)
    copy = T.jpeg(rgb, 20)
    assert hamming(pdq_rgb(copy)[0], pdq_rgb(rgb)[0]) > 31  # plain PDQ misses the q20 copy
    off = cfg(lowpass_sigma=0, partial_match=False)
    assert not _bank({"hazy": rgb}, off).match_rgb(copy).matched  # no other whole-picture variant or region reaches it
    r = _bank({"hazy": rgb}, cfg(partial_match=False)).match_rgb(copy)
    assert (r.best.entry, r.best.variant) == ("bank:hazy", "lowpass~lowpass") and r.best.distance <= 31
    whole = [v["variant"] for v in r.best.matched_variants if not v["variant"].startswith("region:")]
    assert whole == ["lowpass~lowpass"]  # (one region also lands within 31: not enough on its own)
    assert len(r.best.matched_variants) - len(whole) < off.region_min_matches
    # with the partial variants on, a corner hypothesis also reaches it (its fills leave the bits that
    # q20 flips unreliable): still the same single entry
    r = _bank({"hazy": rgb}, cfg(partial_match=True)).match_rgb(copy)
    assert [h.entry for h in r.hits] == ["bank:hazy"]
    assert "lowpass~lowpass" in [v["variant"] for v in r.best.matched_variants]


def test_lowpass_is_compared_only_with_the_banked_lowpass():
    c = cfg(partial_match=True)
    y = T.generated_image(2, family="text")
    hy = pdq_rgb(y)[0]
    low_y = [v.pdq for v in query_variants(y, c) if v.name == "lowpass"][0]
    assert hamming(hy, low_y) > 31  # blurring the text page moves its hash
    other = pdq_rgb(T.generated_image(3, family="shapes"))[0]
    # a banked `lowpass` equal to the query's *original* hash is not a match (blurred meets blurred only)
    decoy = ListEntry("decoy", "image", 1, pdq=other, quality=100, variants=[("lowpass", hy, 100)])
    assert not Matcher.from_entries([decoy], c, "bank").match_rgb(y).matched
    # a banked `lowpass` equal to the query's low-pass hash is a match at distance 0
    same = ListEntry("same", "image", 1, pdq=other, quality=100, variants=[("lowpass", low_y, 100)])
    r = Matcher.from_entries([same], c, "bank").match_rgb(y)
    assert (r.best.ref, r.best.variant, r.best.distance) == ("same", "lowpass~lowpass", 0)
    # a hash-only list never sees it: the query's low-pass hash is not compared with banked originals
    only = ListEntry("only", "image", 1, pdq=low_y, quality=100)
    assert not Matcher.from_entries([only], c, "bank").match_rgb(y).matched


def test_half_size_copy_matches_a_hash_only_list_through_upscale2():
    rgb = T.generated_image(9, family="text")
    h, q = pdq_rgb(rgb)
    copy = T.TRANSFORMS["resize_50"](rgb)
    assert hamming(pdq_rgb(copy)[0], h) > 31  # plain PDQ misses the half-size copy
    entry = ListEntry("page", "image", 1, pdq=h, quality=q)  # a hash-only list: one PDQ per picture
    # (partial variants off: they also reach this copy, through corner hypotheses; upscale2 alone here)
    assert not Matcher.from_entries([entry], cfg(upscales=[], partial_match=False), "list").match_rgb(copy).matched
    r = Matcher.from_entries([entry], cfg(partial_match=False), "list").match_rgb(copy)
    assert (r.best.ref, r.best.variant) == ("page", "upscale2") and r.best.distance <= 31
    with pytest.raises(MediaError, match="upscales"):
        cfg(upscales=[0.5])


def test_grainy_pictures_and_their_strong_jpegs_do_not_match_each_other():
    c = cfg()
    images = {f"hazy{s}": _hazy(s) for s in range(1, 9)}
    m = _bank(images, c)
    for ref, rgb in images.items():
        for q in (10, 20, 30):
            refs = {h.ref for h in m.match_rgb(T.jpeg(rgb, q)).hits}
            assert refs <= {ref}, (ref, q, refs)
        assert {h.ref for h in m.match_rgb(rgb).hits} == {ref}


def test_media_settings_live_in_the_main_config(tmp_path):
    from kalasag.model import load_config

    assert load_config().media.match_distance == 31 and load_config().media.min_quality == 50
    conf = tmp_path / "c.toml"
    conf.write_text("[media]\nmatch_distance = 12\nbank_crops = [0.9]\n")
    c = load_media_config(conf)
    assert (c.match_distance, c.bank_crops, c.min_quality) == (12, [0.9], 50)
    assert load_media_config(conf, match_distance=20).match_distance == 20  # a CLI option wins
    conf.write_text("[media]\nmatch_distance = 300\n")
    with pytest.raises(MediaError, match=r"c\.toml: invalid config at 'media\.match_distance'"):
        load_media_config(conf)
    r = runner.invoke(app, ["hash", str(conf), "--config", str(conf)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "media.match_distance" in r.output


# ------------------------------------------------------------------ lists
def test_list_import_errors_name_the_line(tmp_path):
    good = "a" * 64
    hexf = tmp_path / "l.txt"
    hexf.write_text(f"# comment\n{good}\n\nnot-a-hash\n")
    with pytest.raises(MediaError, match=r"l\.txt:4: not a PDQ hash"):
        read_list(hexf)
    c = tmp_path / "l.csv"
    c.write_text(f"pdq_hex,quality\n{good},90\n{good},high\n")
    with pytest.raises(MediaError, match=r"l\.csv:3: quality is not a number"):
        read_list(c)
    c.write_text("hash,name\nabc,x\n")
    with pytest.raises(MediaError, match=r"l\.csv:1: CSV header has no pdq_hex"):
        read_list(c)
    c.write_text(f"pdq_hex,entry\n{good},x,extra\n")
    with pytest.raises(MediaError, match=r"l\.csv:2: 3 fields, header has 2"):
        read_list(c)
    j = tmp_path / "te.json"
    j.write_text('{"signal_type": "pdq", "signal_value": "' + good + '", "id": 7}\n{"signal_type": "pdq", "signal_value": "12"}\n')
    with pytest.raises(MediaError, match=r"te\.json:2: not a PDQ hash"):
        read_list(j)
    r = runner.invoke(app, ["lists", "import", str(hexf), "--name", "x", "--state", str(tmp_path / "s")])
    assert r.exit_code == 2 and "l.txt:4" in r.output and "Traceback" not in r.output


def test_list_formats_carry_metadata(tmp_path):
    h1, h2 = "1" * 64, "2" * 64
    c = tmp_path / "l.csv"
    c.write_text(f"pdq_hex,list,category,source,entry,note\n{h1},ncmec,A1,hub,e1,first\n")
    [e] = read_list(c)
    assert (e.ref, e.list_name, e.category, e.source, e.metadata, e.pdq.hex()) == ("e1", "ncmec", "A1", "hub", {"note": "first"}, h1)
    te = tmp_path / "export.json"
    te.write_text(json.dumps([{"signal_type": "pdq", "signal_value": h1, "id": 11, "tags": ["a", "b"]},
                              {"signal_type": "video_md5", "signal_value": "d" * 32, "id": 12},
                              {"signal_type": "url", "signal_value": "x", "id": 13}]))
    es = read_list(te)
    assert [(x.ref, x.kind) for x in es] == [("11", "image"), ("12", "exact")]
    assert es[0].metadata == {"tags": "a,b"}
    txt = tmp_path / "signals.txt"
    txt.write_text(f"pdq {h2}\n")
    assert read_list(txt)[0].pdq.hex() == h2


def test_store_versions_add_withdraw_without_rebuild(tmp_path):
    h = [f"{i:02x}" * 32 for i in (0x11, 0x5A, 0xC3)]  # 128 bits apart
    f1 = tmp_path / "a.txt"
    f1.write_text(f"{h[0]}\n{h[1]}\n")
    f2 = tmp_path / "b.txt"
    f2.write_text(f"{h[1]}\n{h[2]}\n")
    st = MediaStore(tmp_path / "state")
    assert st.import_entries("L", read_list(f1)).version == 1
    m = Matcher.from_store(st, cfg())
    assert {e for e, _ in m.images.search([h[2]])[0]} == set()
    res = st.import_entries("L", read_list(f2))
    assert (res.version, res.added, res.duplicates) == (2, 1, 1)
    assert m.refresh() == 1  # the running matcher picks up the new entry
    assert [m.meta[e]["ref"] for e, _ in m.images.search([h[2]])[0]] == [h[2]]
    assert st.withdraw("L", refs=[h[0]]).version == 3
    m.refresh()
    assert m.images.search([h[0]])[0] == []
    assert st.entry_refs("L", 1) == [h[0], h[1]]
    assert st.entry_refs("L", 2) == [h[0], h[1], h[2]]
    assert st.entry_refs("L") == [h[1], h[2]]
    with pytest.raises(MediaError, match="nothing to withdraw"):
        st.withdraw("L", refs=["nope"])


@needs_media
def test_negative_list_suppresses_a_known_false_positive(tmp_path):
    st = MediaStore(tmp_path / "s")
    bh = hash_image(BRIDGE).pdq_hex
    near = bytes(np.frombuffer(bytes.fromhex(bh), np.uint8) ^ np.array([0xFF, 0xFF, 0xFF] + [0] * 29, np.uint8)).hex()
    (tmp_path / "pos.txt").write_text(near + "\n")  # 24 bits away: a match
    (tmp_path / "neg.txt").write_text(bh + "\n")  # the benign image itself: a known false positive
    st.import_entries("pos", read_list(tmp_path / "pos.txt"))
    plain = cfg(dihedral=False, crops=[], uncrops=[], rotations=[])
    r = Matcher.from_store(st, plain).match_image(str(BRIDGE))
    assert r.matched and r.best.distance == 24
    st.import_entries("fp", read_list(tmp_path / "neg.txt"), negative=True)
    r = Matcher.from_store(st, plain).match_image(str(BRIDGE))
    assert not r.matched
    assert r.suppressed == [{"entry": f"pos:{near}", "distance": 24, "by": f"fp:{bh}", "by_distance": 0}]


# ------------------------------------------------------------------ index
def _flip(rng, h, k):
    out = h.copy()
    for p in rng.choice(256, k, replace=False):
        out[p // 8] ^= 1 << (p % 8)
    return out


@pytest.mark.parametrize("distance,layout", [(15, "auto"), (31, "auto"), (40, "auto"), (31, "12x21"), (31, "16x16")])
def test_index_equals_faiss_brute_force(distance, layout):
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(distance)
    db = rng.integers(0, 256, (20000, 32), dtype=np.uint8)
    db[100:110] = db[5]  # duplicates
    q = np.stack([_flip(rng, db[i], int(rng.integers(0, 48))) for i in rng.integers(0, 20000, 300)])
    q = np.concatenate([q, rng.integers(0, 256, (50, 32), dtype=np.uint8), db[5:6]])
    idx = PdqIndex(distance, delta_limit=1000, layout=layout)
    idx.add(np.arange(15000), db[:15000])
    idx.add(np.arange(15000, 20000), db[15000:])  # delta segment, then compaction past the limit
    idx.add([20000], db[3:4])  # stays in the delta
    flat = faiss.IndexBinaryFlat(256)
    flat.add(np.concatenate([db, db[3:4]]))
    lims, D, I = flat.range_search(q, distance + 1)
    mine = idx.search(q)
    found = 0
    for i in range(len(q)):
        ref = sorted((int(I[j]), int(D[j])) for j in range(lims[i], lims[i + 1]))
        assert sorted(mine[i]) == ref, i
        found += len(ref)
    assert found > 50
    assert len(mine[-1]) == 11  # the 11 identical copies of db[5]


def test_index_add_then_withdraw_is_immediate():
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    idx = PdqIndex(31)
    idx.add(np.arange(5000), db)
    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    assert idx.search(new)[0] == []
    idx.add([99999], new)
    assert idx.search(new)[0] == [(99999, 0)]
    idx.remove([99999, 7])
    assert idx.search(new)[0] == [] and idx.search(db[7:8])[0] == []
    idx.compact()
    assert len(idx) == 4999 and idx.search(db[8:9])[0] == [(8, 0)]


def test_index_live_lists_every_added_hash_not_withdrawn():
    rng = np.random.default_rng(1)
    db = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    idx = PdqIndex(31, delta_limit=1000)
    assert [a.shape for a in idx.live()] == [(0, 32), (0,)]
    idx.add(np.arange(200), db[:200])  # sorted segment
    idx.add(np.arange(200, 300), db[200:])  # delta segment
    idx.remove([3, 250, 12345])  # one from each segment, one unknown
    arr, ids = idx.live()
    expect = [i for i in range(300) if i not in (3, 250)]
    assert ids.tolist() == expect and (arr == db[expect]).all() and len(idx) == len(ids)
    idx.compact()
    arr2, ids2 = idx.live()
    assert sorted(ids2.tolist()) == expect and (arr2[np.argsort(ids2)] == db[expect]).all()


# ------------------------------------------------------------------ video
VCFG = dict(video_query_fps=1.0)  # CI speed; docs/media.md shows the same outcomes at 5 fps


@pytest.fixture(scope="module")
def video_bank(tmp_path_factory):
    if not VIDEO.is_dir():
        pytest.skip(f"shared media samples not found at {MEDIA}")
    st = MediaStore(tmp_path_factory.mktemp("vstate"))
    r = runner.invoke(app, ["lists", "add", str(VIDEO / "chair-orig-22-sd-bar.mp4"), str(VIDEO / "pattern-hd-no-bar.mp4"),
                            "--name", "videos", "--state", str(st.state_dir)])
    assert r.exit_code == 0, r.output
    return Matcher.from_store(st, cfg(**VCFG))


@needs_media
@pytest.mark.parametrize("query,expected", [
    ("chair-22-sd-grey-bar.mp4", "videos:chair-orig-22-sd-bar.mp4"),
    ("chair-22-sd-sepia-bar.mp4", "videos:chair-orig-22-sd-bar.mp4"),
    ("chair-22-with-small-logo-bar.mp4", "videos:chair-orig-22-sd-bar.mp4"),
    ("chair-20-sd-bar.mp4", "videos:chair-orig-22-sd-bar.mp4"),
    ("pattern-sd-grey-bar.mp4", "videos:pattern-hd-no-bar.mp4"),
    ("pattern-sd-with-small-logo-bar.mp4", "videos:pattern-hd-no-bar.mp4"),
    ("doorknob-hd-no-bar.mp4", None),
])
def test_video_variants_match_their_originals_and_other_subjects_do_not(video_bank, query, expected):
    r = video_bank.match_video(str(VIDEO / query))
    entries = [h.entry for h in r.hits if h.method == "vpdq"]
    if expected is None:
        assert entries == []
        return
    assert entries == [expected]
    h = r.hits[0]
    assert h.compared_pct >= 80 and h.query_pct >= 80
    assert h.query_ranges and h.query_ranges[0][0] <= 1.0 and h.banked_ranges


@needs_media
def test_video_exact_md5_and_vpdq_hits(video_bank):
    r = video_bank.match_video(str(VIDEO / "pattern-hd-no-bar.mp4"))
    assert [h.method for h in r.hits][:2] == ["md5", "sha256"]
    assert any(h.method == "vpdq" and h.compared_pct == 100.0 for h in r.hits)


@needs_media
def test_video_frame_sampling_is_one_per_second_with_timestamps():
    v = hash_video(VIDEO / "doorknob-hd-no-bar.mp4", 1.0)
    assert [f.timestamp for f in v.frames] == [0.0, 1.0, 2.0, 3.0]
    assert hash_video(VIDEO / "doorknob-hd-no-bar.mp4", 1.0).frames == v.frames


@needs_media
def test_watch_alerts_on_a_banked_video_and_reports_latency(video_bank):
    from kalasag.media import watch

    import time

    started = time.monotonic()
    alerts = list(watch(str(VIDEO / "chair-22-sd-grey-bar.mp4"), video_bank, max_seconds=6))
    wall = time.monotonic() - started
    assert [a.entry for a in alerts] == ["videos:chair-orig-22-sd-bar.mp4"]
    a = alerts[0]
    assert a.matched_frames >= 3 and a.first_match_time <= a.alert_time <= 3.0
    # the reported latency is a real wall-clock interval inside this call (its speed is benchmarked in bench/)
    assert 0 <= a.latency_s <= wall
    assert list(watch(str(VIDEO / "doorknob-hd-no-bar.mp4"), video_bank)) == []


# ------------------------------------------------------------------ CLI contract
@needs_media
def test_cli_hash_csv_contract():
    clip = VIDEO / "doorknob-hd-no-bar.mp4"
    r = runner.invoke(app, ["hash", str(BRIDGE), str(clip), "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert list(rows[0]) == ["path", "kind", "pdq_hex", "quality", "md5", "sha256", "timestamp"]
    assert (rows[0]["kind"], rows[0]["pdq_hex"], rows[0]["quality"], rows[0]["timestamp"]) == ("image", PYTX_BRIDGE, "100", "")
    video = [r for r in rows if r["kind"] == "video"]
    assert [v["timestamp"] for v in video] == ["0.000", "1.000", "2.000", "3.000"]
    assert len({v["md5"] for v in video}) == 1 and len(rows) == 5


@needs_media
def test_cli_match_csv_contract_without_import(tmp_path):
    lst = tmp_path / "HASHES.csv"
    lst.write_text(f"pdq_hex,entry,category\n{PYTX_BRIDGE},bridge-1,test\n")
    flip = PDQ / "dih" / "bridge-6-flipy.jpg"
    other = PDQ / "labelme-subset" / "q1050.jpg"
    r = runner.invoke(app, ["match", str(flip), str(other), "--list", str(lst), "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert list(rows[0]) == ["path", "matched", "entry", "distance", "variant"]
    assert rows[0]["matched"] == "true" and rows[0]["entry"] == "HASHES.csv:bridge-1"
    assert int(rows[0]["distance"]) <= 10 and rows[0]["variant"] in ("flip_h", "flip_v")
    assert (rows[1]["matched"], rows[1]["entry"], rows[1]["distance"]) == ("false", "", "")


def test_cli_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["hash", str(tmp_path / "missing.jpg")])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and "no such file" in r.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00not media" * 10)
    r = runner.invoke(app, ["hash", str(junk)])
    assert r.exit_code == 2 and "not an image or video" in r.output
    text = tmp_path / "notes.txt"
    text.write_text("school fees\n" * 50)
    r = runner.invoke(app, ["hash", str(text)])
    assert r.exit_code == 2 and "not an image or video" in r.output  # FFmpeg's tty demuxer is refused
    r = runner.invoke(app, ["match", str(junk), "--state", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no hash lists" in r.output


# ------------------------------------------------------------------ never the media
@needs_media
def test_nothing_but_hashes_is_written(tmp_path):
    import av

    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    img = tmp_path / "in" / "gen.png"
    img.parent.mkdir()
    save(T.generated_image(3), img)
    clip = VIDEO / "pattern-sd-grey-bar.mp4"
    conf = tmp_path / "in" / "fast.toml"
    conf.write_text("[media]\nvideo_query_fps = 1.0\n")
    steps = [
        ["lists", "add", str(img), str(clip), "--name", "bank", "--state", str(state)],
        ["match", str(img), str(clip), "--state", str(state), "--format", "json", "--config", str(conf)],
        ["watch", str(clip), "--state", str(state), "--max-seconds", "3", "--config", str(conf)],
        ["hash", str(img), "--format", "csv"],
    ]
    for i, s in enumerate(steps):
        r = runner.invoke(app, s)
        assert r.exit_code == 0, r.output
        (out / f"step{i}.txt").write_text(r.output)
    written = [p for p in list(state.rglob("*")) + list(out.rglob("*")) if p.is_file()]
    assert {p.name for p in written if p.parent == state} == {"media.sqlite"}
    pixels = [load_rgb(img)]
    with av.open(str(clip)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if k % 15 == 0:
                pixels.append(frame.to_ndarray(format="rgb24"))
            if k > 60:
                break
    probes = []
    for px in pixels:
        h, w = px.shape[:2]
        for y in (h // 4, h // 2, 3 * h // 4):
            probes.append(px[y, w // 3 : w // 3 + 16].tobytes())  # 48 raw bytes of a row
    for p in written:
        data = p.read_bytes()
        with pytest.raises(Exception):
            Image.open(p).load()
        head = data[:16]
        assert not head.startswith(MEDIA_MAGIC) and head[4:8] != b"ftyp", p  # no image/video container
        assert not any(pr in data for pr in probes), p


@needs_media
def test_watch_follows_a_growing_transport_stream(tmp_path, video_bank):
    """A recording still being written (MPEG-TS, appended in chunks by a thread) is matched while it grows."""
    import threading
    import time

    import av

    from kalasag.media.watch import FollowFile, watch

    src = tmp_path / "rec.ts"  # test input only (tmp), outside any Kalasag state/output directory
    with av.open(str(VIDEO / "chair-22-sd-grey-bar.mp4")) as inp, av.open(str(src), "w", format="mpegts") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for k, packet in enumerate(inp.demux(vin)):
            if packet.dts is None:
                continue
            if k > 150:  # ~5 s is enough
                break
            packet.stream = vout
            out.mux(packet)
    data = src.read_bytes()
    growing = tmp_path / "growing.ts"
    growing.write_bytes(b"")

    def writer() -> None:
        step = len(data) // 10
        for i in range(0, len(data), step):
            with growing.open("ab") as fh:
                fh.write(data[i : i + step])
            time.sleep(0.05)

    t = threading.Thread(target=writer)
    t.start()
    container = av.open(FollowFile(str(growing), idle_seconds=1.0), mode="r")
    try:
        alerts = list(watch(str(growing), video_bank, container=container))
    finally:
        container.close()
        t.join()
    assert [a.entry for a in alerts] == ["videos:chair-orig-22-sd-bar.mp4"]


def test_index_settings_come_from_the_media_config() -> None:
    """[media] index_layout / index_auto_switch / index_delta_limit reach every index of a Matcher;
    'auto' picks 16x16 below the switch and 12x21 from it, with identical results."""
    cfg = load_media_config(index_auto_switch=50, index_delta_limit=7)
    m = Matcher(cfg)
    assert all(ix.auto_switch == 50 and ix.delta_limit == 7 and ix.layout == "auto"
               for ix in (m.images, m.frames, m.bank, m.regions))
    rng = np.random.default_rng(5)
    banked = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    small, large = PdqIndex(31, auto_switch=61), PdqIndex(31, auto_switch=60)
    for ix in (small, large):
        ix.add(np.arange(60), banked)
        ix.compact()
    assert small.bits == (16,) * 16 and len(large.bits) == 12
    queries = banked[:5].copy()
    queries[:, 0] ^= 0b111                              # 3 bits away from banked 0..4
    assert [sorted(r) for r in small.search(queries)] == [sorted(r) for r in large.search(queries)]
    assert [[i for i, _ in r] for r in small.search(queries)] == [[k] for k in range(5)]
    with pytest.raises(MediaError, match="index_layout"):
        load_media_config(index_layout="8x32")


# ------------------------------------------------------------------ partial (reliable-bit) variants
def _hash_only(images: dict[str, np.ndarray], c) -> Matcher:
    entries = []
    for ref, rgb in images.items():
        h, q = pdq_rgb(rgb)
        entries.append(ListEntry(ref, "image", 1, pdq=h, quality=q))  # one PDQ per picture, as a clearinghouse list
    return Matcher.from_entries(entries, c, "list")


def test_reliable_bits_are_the_bits_every_fill_agrees_on():
    from kalasag.media.variants import reliable_bits

    rgb = T.generated_image(3)
    pdq, mask, n, q = reliable_bits([rgb, rgb.copy()])  # identical fills: every bit agrees
    assert (pdq, mask, n) == (pdq_rgb(rgb)[0], b"\xff" * 32, 256) and q == pdq_rgb(rgb)[1]
    other = T.generated_image(4)
    a, b = pdq_rgb(rgb)[0], pdq_rgb(other)[0]
    pdq, mask, n, _ = reliable_bits([rgb, other])  # two different pictures: agree where their hashes do
    assert pdq == a and n == 256 - hamming(a, b)
    assert mask == bytes(~(x ^ y) & 0xFF for x, y in zip(a, b))


def test_partial_threshold_scales_with_the_bits_used():
    from kalasag.media.variants import partial_threshold

    c = cfg(partial_match=True)
    assert partial_threshold(256, c) == 31 and partial_threshold(200, c) == 24  # floor(31 × 200 / 256) = 24
    assert partial_threshold(c.partial_min_bits - 1, c) == -1  # too few reliable bits: never matches
    assert partial_threshold(200, cfg(partial_ratio_scale=0.5)) == 12  # floor(15.5 × 200 / 256)


def test_crop_matches_a_hash_only_list_through_a_partial_uncrop():
    rgb = T.generated_image(11)
    images = {"orig": rgb, **{f"other{s}": T.generated_image(s, family="abstract") for s in range(20, 26)}}
    copy = T.TRANSFORMS["crop_90"](rgb)
    assert hamming(pdq_rgb(copy)[0], pdq_rgb(rgb)[0]) > 31  # plain PDQ misses the crop
    assert not _hash_only(images, cfg(partial_match=False)).match_rgb(copy).matched
    c128 = cfg(partial_match=True, partial_min_bits=128)  # this copy's uncrop90 hypothesis keeps 191 reliable bits
    r = _hash_only(images, c128).match_rgb(copy)
    assert [h.ref for h in r.hits] == ["orig"]
    assert any(v["variant"].startswith("uncrop90_partial(191 bits)") for v in r.best.matched_variants)
    # at the default partial_min_bits (192) a mask that thin is not used, and nothing else reaches the copy
    assert not _hash_only(images, cfg(partial_match=True)).match_rgb(copy).matched
    # an unrelated picture cropped the same way matches nothing
    assert not _hash_only(images, c128).match_rgb(T.TRANSFORMS["crop_90"](T.generated_image(30))).matched


def test_corner_overlay_matches_a_hash_only_list_through_a_partial_corner():
    rgb = T.generated_image(11)
    images = {"orig": rgb, **{f"other{s}": T.generated_image(s, family="abstract") for s in range(20, 26)}}
    copy = T.TRANSFORMS["overlay_10"](rgb)
    assert not _hash_only(images, cfg(partial_match=False)).match_rgb(copy).matched
    r = _hash_only(images, cfg(partial_match=True)).match_rgb(copy)
    assert [h.ref for h in r.hits] == ["orig"] and r.best.variant.startswith("corner_br_partial(")
    assert not _hash_only(images, cfg(partial_match=True)).match_rgb(T.TRANSFORMS["overlay_10"](T.generated_image(30))).matched


def test_partial_scan_follows_additions_and_withdrawals():
    from kalasag.media.matcher import _row_from_entry

    rgb = T.generated_image(11)
    copy = T.TRANSFORMS["crop_90"](rgb)  # matches only through a partial variant (test above)
    m = _hash_only({"other": T.generated_image(21)}, cfg(partial_match=True, partial_min_bits=128))
    assert not m.match_rgb(copy).matched
    h, q = pdq_rgb(rgb)
    m._add_rows([_row_from_entry(2, ListEntry("orig", "image", 1, pdq=h, quality=q), "late", negative=False)])
    assert [x.ref for x in m.match_rgb(copy).hits] == ["orig"]  # added after the index was built
    m._remove([2])
    assert not m.match_rgb(copy).matched


def test_partial_scan_equals_brute_force_on_the_reliable_bits():
    from kalasag.media.variants import partial_threshold, partial_variants

    c = cfg(partial_match=True)
    parts = partial_variants(T.generated_image(5), c)
    rng = np.random.default_rng(4)
    db = rng.integers(0, 256, (20000, 32), dtype=np.uint8)
    db[123] = np.frombuffer(parts[0].pdq, np.uint8)  # distance 0 on the reliable bits
    db[77] = np.frombuffer(parts[3].pdq, np.uint8) ^ 1  # one bit per byte flipped: 32 bits, some unreliable
    db[78] = np.frombuffer(parts[3].pdq, np.uint8) ^ 3  # 64 bits flipped: too far on any mask
    m = Matcher(c)
    m.images.add(np.arange(len(db)), db)
    words = db.view(np.uint64).reshape(-1, 4)
    for work in (0.0, 1e9, Matcher.partial_probe_work):  # always scan, always probe the index, the default choice
        m.partial_probe_work = work
        got = m.partial_search(parts)
        for v, res in zip(parts, got):
            n = int(np.unpackbits(np.frombuffer(v.mask, np.uint8)).sum())
            d = np.bitwise_count((words ^ np.frombuffer(v.pdq, np.uint64)) & np.frombuffer(v.mask, np.uint64)).sum(axis=1)
            t = partial_threshold(n, c)
            assert sorted(res) == sorted((int(i), int(d[i]), n) for i in np.flatnonzero(d <= t)) if t >= 0 else res == []
        assert (123, 0) in [(i, d) for i, d, _ in got[0]]
        assert 78 not in [i for r in got for i, _, _ in r]
    capped = Matcher(cfg(partial_match=True, partial_max_bank=len(db) - 1))  # a bank above the cap is not scanned
    capped.images.add(np.arange(len(db)), db)
    assert capped.partial_search(parts) == [[] for _ in parts]


def _masked_brute(db: np.ndarray, ids: np.ndarray, q: np.ndarray, m: np.ndarray, t: int) -> list[tuple[int, int]]:
    d = np.bitwise_count((db ^ q) & m).sum(axis=1)
    return sorted(((int(i), int(x)) for i, x in zip(ids, d) if x <= t), key=lambda p: (p[1], p[0]))


@pytest.mark.parametrize("layout", ["16x16", "12x21"])
def test_masked_index_search_equals_the_exact_scan(layout):
    """Pigeonhole probing on the masked bits of each chunk finds exactly what a scan finds, including
    hashes planted at the worst case for the pigeonhole: ρ_k + 1 masked bits off in every probed chunk
    but one (found only through that one), and all flips bunched in one or two chunks."""
    from kalasag.media.index import LAYOUTS, _chunk_keys, _masked_plan, _starts

    widths = LAYOUTS[layout]
    starts = _starts(widths)
    rng = np.random.default_rng(7)
    db = rng.integers(0, 256, (30000, 32), dtype=np.uint8)
    cases, row = [], 0
    for j in range(15):
        q = rng.integers(0, 256, 32, dtype=np.uint8)
        bits = np.ones(256, bool)
        if j % 3 == 0:  # unreliable bits scattered
            bits[rng.choice(256, int(rng.integers(10, 70)), replace=False)] = False
        elif j % 3 == 1:  # unreliable bits bunched in a few chunks
            start = int(rng.integers(0, 200))
            bits[start : start + int(rng.integers(20, 56))] = False
        m = np.packbits(bits)
        n = int(bits.sum())
        t = int(31 * n / 256) if j < 10 else int(rng.integers(0, 8))  # also small limits
        rel = np.flatnonzero(bits)
        unrel = np.flatnonzero(~bits)

        def plant(flips: np.ndarray) -> None:
            nonlocal row
            b = np.unpackbits(q).astype(bool)
            b[flips] ^= True
            if len(unrel):  # noise on the unmasked bits never counts
                b[rng.choice(unrel, min(len(unrel), 9), replace=False)] ^= True
            db[row] = np.packbits(b)
            row += 1

        for extra in (0, 1, -1):  # scattered, at t, t + 1, t - 1
            plant(rng.choice(rel, max(0, t + extra), replace=False))
        for extra in (0, 1):  # bunched in one or two chunks, and in the 96 filter bits next to them
            for _ in range(6):
                ks = rng.choice(len(widths), int(rng.integers(1, 3)), replace=False)
                pool = [p for p in rel if any(starts[k] <= p < starts[k] + widths[k] for k in ks)]
                pool += list(rng.choice(rel, 24, replace=False))
                pool = np.unique(pool)
                if len(pool) >= t + extra:
                    plant(rng.choice(pool, t + extra, replace=False))
        radii = _masked_plan(widths, _chunk_keys(m[None], widths)[0], t)[0]
        for extra in (0, 1):  # worst case: every probed chunk just beyond its radius but one
            per = {k: [p for p in rel if starts[k] <= p < starts[k] + widths[k]] for k in range(len(widths))}
            probed = [k for k, r in enumerate(radii) if r >= 0]
            for lucky in probed[:3]:
                flips = []
                for k in probed:
                    flips += per[k][: radii[k] + (k != lucky)]
                rest = [p for k, r in enumerate(radii) if r < 0 for p in per[k]]
                flips += rest[: max(0, t + extra - len(flips))]
                if len(flips) == t + extra:
                    plant(np.array(flips, int))
        cases.append((q, m, t))
    idx = PdqIndex(31, delta_limit=100000, layout=layout)
    idx.add(np.arange(25000), db[:25000])
    idx.add(np.arange(25000, 30000), db[25000:])  # delta segment
    idx.remove([1, 25000, 20])
    live_db, live_ids = idx.live()
    qs, ms, ts = (np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases]), [c[2] for c in cases])
    got = idx.search_masked(qs, ms, ts, max_work=1e9)  # always probe (the cost cap would scan a bank this small)
    hits = 0
    for (q, m, t), res in zip(cases, got):
        assert res == _masked_brute(live_db, live_ids, q, m, t)
        hits += len(res)
    assert hits >= 100
    assert idx.search_masked(qs[:1], ms[:1], [-1]) == [[]]
    assert idx.search_masked(qs[:1], ms[:1], [ts[0]], max_work=1e-9) == [None]  # too costly: left to the caller's scan
