"""Datasets: official-archive verification, image folders, subsets, statistics, the batch loader."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from resnet_lab import data as D


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never touch the user's cache or the shared data; never go to the network.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RESNET_LAB_DATA", raising=False)


# ----------------------------------------------------------------------------- synthetic, subsets


def test_synthetic_is_balanced_deterministic_and_labelled():
    a = D.synthetic(200, 50, seed=3)
    b = D.synthetic(200, 50, seed=3)
    assert a.variant == "synthetic"
    assert a.train_x.shape == (200, 3, 32, 32) and a.train_x.dtype == torch.uint8
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert torch.bincount(a.train_y).tolist() == [20] * 10
    assert not torch.equal(a.train_x, D.synthetic(200, 50, seed=4).train_x)


def test_mean_std_match_direct_computation():
    d = D.synthetic(100, 10)
    x = d.train_x.double() / 255
    assert d.mean == pytest.approx(x.mean((0, 2, 3)).tolist(), abs=1e-5)
    assert d.std == pytest.approx(x.std((0, 2, 3), unbiased=False).tolist(), abs=1e-5)


def test_balanced_indices_deterministic_nested_and_checked():
    labels = torch.arange(100) % 4
    a = D.balanced_indices(labels, 5, 4, seed=0)
    assert torch.equal(a, D.balanced_indices(labels, 5, 4, seed=0))
    assert torch.bincount(labels[a]).tolist() == [5, 5, 5, 5]
    assert torch.equal(a, a.sort().values)
    bigger = D.balanced_indices(labels, 10, 4, seed=0)
    assert set(a.tolist()) <= set(bigger.tolist())  # a smaller subset sits inside a larger one
    assert not torch.equal(a, D.balanced_indices(labels, 5, 4, seed=1))
    with pytest.raises(D.DataError, match="at most 25"):
        D.balanced_indices(labels, 26, 4)


def test_subset_keeps_variant_records_sizes_and_recomputes_stats():
    d = D.synthetic(300, 100)
    s = d.subset(7, 3, seed=1)
    assert s.variant == "synthetic" and s.subset_sizes == (7, 3)
    assert len(s.train_y) == 70 and len(s.test_y) == 30
    assert s.info()["subset_per_class"] == [7, 3]
    x = s.train_x.double() / 255
    assert s.mean == pytest.approx(x.mean((0, 2, 3)).tolist(), abs=1e-5)


# ----------------------------------------------------------------------------- image folders


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")  # lossless, so pixels can be compared
    return buf.getvalue()


def _folder_images(classes=("cat", "ant", "bee"), n_train=4, n_test=2):
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        for c in classes:
            for i in range(n):
                out[f"{split}/{c}/{i:04d}.png"] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return out


def _write_zip(path, images, compression=zipfile.ZIP_STORED, extra=None):
    """A zip of ``images`` (name -> array) as PNGs, plus ``extra`` text files."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, arr in images.items():
            z.writestr(name, _png(arr))
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    return path


@pytest.fixture
def image_zip(tmp_path):
    images = _folder_images()
    path = _write_zip(tmp_path / "tiny-set.zip", images, extra={"README.txt": "not an image"})
    return path, images


def test_image_folder_zip_and_directory_read_the_same_pixels(image_zip, tmp_path):
    path, images = image_zip
    folder = tmp_path / "tiny-dir"
    for name, arr in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(_png(arr))
    z = D.load_data(path)
    d = D.load_data(folder)
    assert z.classes == ["ant", "bee", "cat"]  # sorted, as torchvision's ImageFolder
    assert z.variant == "tiny-set" and d.variant == "tiny-dir"
    assert z.source == "tiny-set.zip"  # a file name, never a full path
    assert z.train_x.shape == (12, 3, 8, 8) and len(z.test_y) == 6
    for x, y in ((z.train_x, z.train_y), (d.train_x, d.train_y)):
        first_bee = int((y == 1).nonzero()[0])
        expected = torch.from_numpy(images["train/bee/0000.png"]).permute(2, 0, 1)
        assert torch.equal(x[first_bee], expected)
    assert torch.equal(z.train_x, d.train_x) and torch.equal(z.test_y, d.test_y)


def test_image_folder_subset_decodes_the_same_choice_and_full_decode_is_cached(image_zip, tmp_path):
    path, _ = image_zip
    partial = D.load_image_folder(path, train_per_class=2, test_per_class=1, seed=5)
    full = D.load_image_folder(path)
    cached = list((tmp_path / "cache" / "resnet_lab" / "decoded").glob("tiny-set-*.pt"))
    assert len(cached) == 1
    again = D.load_image_folder(path)  # from the cache
    assert torch.equal(again.train_x, full.train_x) and again.classes == full.classes
    reference = full.subset(2, 1, seed=5)
    assert torch.equal(partial.train_x, reference.train_x)
    assert torch.equal(partial.test_y, reference.test_y)
    assert partial.subset_sizes == (2, 1)


def test_image_folder_zip_from_a_mac_ignores_its_metadata_files(image_zip, tmp_path):
    path, images = image_zip
    mac = tmp_path / "from-a-mac.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(mac, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
            dst.writestr(f"__MACOSX/{name.rsplit('/', 1)[0]}/._{name.rsplit('/', 1)[-1]}", b"\0\5")
        dst.writestr("train/.hidden/._x.png", b"junk")
    plain, from_mac = D.load_image_folder(path), D.load_image_folder(mac)
    assert from_mac.classes == plain.classes
    assert torch.equal(from_mac.train_x, plain.train_x) and torch.equal(
        from_mac.test_y, plain.test_y
    )


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_subset_sizes_must_be_whole_positive_numbers(n):
    with pytest.raises(D.DataError, match="images per class >= 1"):
        D.load_data("synthetic", train_per_class=n)
    with pytest.raises(D.DataError, match="images per class >= 1"):
        D.load_data("synthetic", test_per_class=n)


def test_image_folder_errors_are_clear(tmp_path):
    bad = tmp_path / "flat"
    bad.mkdir()
    (bad / "x.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(D.DataError, match="not an image folder"):
        D.load_data(bad)
    with pytest.raises(D.DataError, match="missing.zip' does not exist; check the path"):
        D.load_data(tmp_path / "missing.zip")
    with pytest.raises(D.DataError, match="unknown dataset 'cifar11'"):
        D.load_data("cifar11")
    broken = tmp_path / "broken"
    (broken / "train" / "a").mkdir(parents=True)
    (broken / "test" / "a").mkdir(parents=True)
    (broken / "train" / "a" / "0.png").write_bytes(b"not a png")
    (broken / "test" / "a" / "0.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(D.DataError, match="0.png.*not a readable image"):
        D.load_data(broken)


# ----------------------------------------------------------------------------- official archives


def _fake_cifar10(tmp_path):
    """A small archive in the official format (pickled dicts of flat uint8 rows)."""
    rng = np.random.default_rng(1)
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    expected = {}
    for name in names:
        x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, 4).tolist()
        expected[name] = (x, y)
        with open(src / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": y}, f)
    with open(src / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    files = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in src.iterdir()}
    return archive, md5, expected, files


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    archive, md5, expected, files = _fake_cifar10(tmp_path)
    spec = D.CIFAR_ARCHIVES["cifar10"]
    fake = D.cifar._Archive(
        **{**spec.__dict__, "url": archive.as_uri(), "md5": md5, "file_md5": files}
    )
    monkeypatch.setitem(D.CIFAR_ARCHIVES, "cifar10", fake)
    cache = tmp_path / "datacache"
    cache.mkdir()
    monkeypatch.setenv("RESNET_LAB_DATA", str(cache))
    return cache, expected


def test_cifar_download_verify_extract_and_read(fake_cifar):
    cache, expected = fake_cifar
    d = D.load_data("cifar10", progress=False)
    assert d.variant == "cifar10" and d.classes[:2] == ["c0", "c1"]
    assert d.train_x.shape == (20, 3, 32, 32) and d.test_x.shape == (4, 3, 32, 32)
    x, y = expected["data_batch_2"]
    assert torch.equal(d.train_x[4:8].reshape(4, -1), torch.from_numpy(x))
    assert d.train_y[4:8].tolist() == y
    assert (cache / "cifar-10-batches-py" / ".complete").exists()
    assert D.load_data("auto", download=False, progress=False).variant == "cifar10"


def test_corrupt_archive_is_reported_deleted_and_downloaded_again(fake_cifar):
    cache, _ = fake_cifar
    partial = cache / "cifar-10-python.tar.gz"
    partial.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(D.DataError, match="corrupt or incomplete"):
        D.load_data("cifar10", download=False)
    assert partial.exists()  # without permission to download, nothing is deleted
    with pytest.warns(UserWarning, match="corrupt or incomplete.*downloading it again"):
        d = D.load_data("cifar10", progress=False)
    assert len(d.train_y) == 20
    assert D.cifar._md5(partial) == D.CIFAR_ARCHIVES["cifar10"].md5


def test_download_failing_its_checksum_is_deleted_with_a_clear_error(fake_cifar, monkeypatch):
    cache, _ = fake_cifar
    spec = D.CIFAR_ARCHIVES["cifar10"]
    monkeypatch.setitem(
        D.CIFAR_ARCHIVES, "cifar10", D.cifar._Archive(**{**spec.__dict__, "md5": "0" * 32})
    )
    with pytest.raises(D.DataError, match="fails its MD5 check"):
        D.load_data("cifar10", progress=False)
    assert not any(cache.glob("*.tar.gz")) and not any(cache.glob(".*tmp"))


def test_auto_without_data_or_network_falls_back_to_labelled_synthetic():
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        d = D.load_data("auto", download=False, train_per_class=3, test_per_class=2)
    assert d.variant == "synthetic" and len(d.train_y) == 30 and len(d.test_y) == 20


# ----------------------------------------------------------------------------- the loader


def test_augment_batch_is_a_crop_of_the_padded_image_and_flips_per_image():
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    shifts = torch.tensor([[0, 0], [4, 4], [8, 8], [1, 7], [3, 2], [4, 4]])
    flips = torch.tensor([False, False, True, True, False, True])
    out = D.augment_batch(x, shifts, flips, pad=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(6):
        dy, dx = shifts[i].tolist()
        crop = padded[i, :, dy : dy + 8, dx : dx + 8]
        assert torch.equal(out[i], crop.flip(-1) if flips[i] else crop)
    assert torch.equal(out[1], x[1])  # centred, no flip: the image itself
    assert torch.equal(out[5], x[5].flip(-1))


def test_gpu_loader_augments_independently_and_deterministically():
    d = D.synthetic(64, 16)
    kw = dict(batch_size=32, train=True, mean=d.mean, std=d.std, device="cpu", seed=0)
    loader = D.GpuLoader(d.train_x, d.train_y, **kw)
    batches = list(loader)
    assert len(loader) == 2 and [len(y) for _, y in batches] == [32, 32]
    again = list(D.GpuLoader(d.train_x, d.train_y, **kw))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    shifts, flips = loader._plan[1], loader._plan[2]
    assert 0 < flips.float().mean() < 1  # some images flipped, some not, in one epoch
    assert len({tuple(s) for s in shifts.tolist()}) > 10  # crops differ per image
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader))[0], batches[0][0])  # a new epoch, new draws
    # every label appears exactly once per epoch
    ys = torch.cat([y for _, y in batches])
    assert sorted(ys.tolist()) == sorted(d.train_y.tolist())


def test_gpu_loader_eval_is_ordered_normalised_and_unaugmented():
    d = D.synthetic(10, 10)
    loader = D.GpuLoader(d.test_x, d.test_y, 4, False, d.mean, d.std, "cpu")
    xs = torch.cat([x for x, _ in loader])
    mean = torch.tensor(d.mean).view(1, 3, 1, 1)
    std = torch.tensor(d.std).view(1, 3, 1, 1)
    torch.testing.assert_close(xs, (d.test_x.float() / 255 - mean) / std)
    assert torch.equal(torch.cat([y for _, y in loader]), d.test_y)
    assert len(loader) == 3  # the last, partial batch is kept


def test_gpu_loader_ranks_split_every_global_batch():
    d = D.synthetic(40, 10)
    kw = dict(batch_size=16, train=True, mean=d.mean, std=d.std, device="cpu", seed=2)
    whole = list(D.GpuLoader(d.train_x, d.train_y, **kw))
    parts = [list(D.GpuLoader(d.train_x, d.train_y, rank=r, world_size=2, **kw)) for r in (0, 1)]
    for b, (x, y) in enumerate(whole):
        torch.testing.assert_close(torch.cat([parts[0][b][0], parts[1][b][0]]), x)
        assert torch.equal(torch.cat([parts[0][b][1], parts[1][b][1]]), y)
    loader = D.GpuLoader(d.train_x, d.train_y, **kw)
    tail = list(loader.iter_from(1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(tail, whole[1:], strict=True))


def test_resize_averages_areas_and_names_the_size():
    resize = D.resize

    d = D.synthetic(n_train=20, n_test=10, image_size=32)
    small = resize(d, 16)
    assert small.image_size == (3, 16, 16) and small.variant == "synthetic-16px"
    assert small.info()["image_size"] == [3, 16, 16]
    # each output pixel is the rounded mean of a 2x2 block of input pixels
    block = d.train_x[0, 0, :2, :2].double().mean()
    assert int(small.train_x[0, 0, 0, 0]) == int(torch.round(block))
    assert torch.equal(small.train_y, d.train_y)
    assert resize(d, 32) is d
    with pytest.raises(D.DataError, match="larger than the images"):
        resize(d, 64)
    with pytest.raises(D.DataError, match="whole number of pixels"):
        resize(d, 2)


def test_load_data_image_size_and_engine_crop_padding():
    from resnet_lab.engine import crop_padding

    d = D.load_data("synthetic", train_per_class=2, test_per_class=1, image_size=16)
    assert d.variant == "synthetic-16px" and d.image_size == (3, 16, 16)
    assert (crop_padding(32), crop_padding(16), crop_padding(8)) == (4, 2, 1)


def test_a_truncated_zip_is_reported_as_damaged(image_zip, tmp_path):
    path, _ = image_zip
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(D.DataError, match=r"cut.zip is a damaged zip file .*copy or download it"):
        D.load_image_folder(cut, cache=False)


def test_a_corrupt_member_of_a_zip_is_reported_as_damaged(tmp_path):
    images = _folder_images()
    path = _write_zip(tmp_path / "bitrot.zip", images, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"train/ant/0001.png") + len("train/ant/0001.png") + 20
    raw[start : start + 8] = b"\xff" * 8  # damage the compressed bytes of one member
    path.write_bytes(bytes(raw))
    with pytest.raises(D.DataError, match="bitrot.zip is a damaged zip file"):
        D.load_image_folder(path, cache=False)


@pytest.mark.parametrize("as_zip", [False, True])
def test_an_empty_class_folder_is_named(tmp_path, as_zip):
    images = _folder_images()
    folder = tmp_path / "with-empty"
    for name, arr in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(_png(arr))
    (folder / "test" / "dog").mkdir()
    (folder / "train" / "dog").mkdir()
    (folder / "train" / "dog" / "0000.png").write_bytes(_png(images["train/cat/0000.png"]))
    path = folder
    if as_zip:
        path = tmp_path / "with-empty.zip"
        with zipfile.ZipFile(path, "w") as z:
            for p in sorted(folder.rglob("*")):
                z.write(p, p.relative_to(folder).as_posix())  # folders as "name/" entries
    with pytest.raises(D.DataError, match=r"the class folder test/dog/ holds no images"):
        D.load_image_folder(path, cache=False)


def test_gpu_loader_forever_runs_epoch_after_epoch():
    d = D.synthetic(64, 16)
    kw = dict(batch_size=32, train=True, mean=d.mean, std=d.std, device="cpu", seed=0)
    epochs = []
    for epoch in (0, 1):
        one = D.GpuLoader(d.train_x, d.train_y, **kw)
        one.set_epoch(epoch)
        epochs += list(one)
    endless = D.GpuLoader(d.train_x, d.train_y, **kw).forever()
    for expected in epochs:  # the same batches as epochs 0 and 1 read one after the other
        x, y = next(endless)
        assert torch.equal(x, expected[0]) and torch.equal(y, expected[1])
    assert next(endless)[0].shape == epochs[0][0].shape  # and it goes on


class _Planted:
    """A pickle that runs code when loaded: it writes the file ``ran``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_extracted_file_that_fails_its_md5_is_never_unpickled(fake_cifar, tmp_path):
    cache, expected = fake_cifar
    D.load_data("cifar10", progress=False)  # downloaded, verified, extracted
    batch = cache / "cifar-10-batches-py" / "data_batch_1"
    ran = tmp_path / "ran"
    batch.write_bytes(pickle.dumps(_Planted(str(ran))))
    with pytest.warns(UserWarning, match="data_batch_1 in cifar-10-batches-py/ .* fails its MD5"):
        d = D.load_data("cifar10", progress=False)  # extracted again from the archive
    assert not ran.exists() and d.train_y[:4].tolist() == expected["data_batch_1"][1]
    batch.write_bytes(pickle.dumps(_Planted(str(ran))))
    (cache / "cifar-10-python.tar.gz").unlink()
    with pytest.raises(D.DataError, match="downloads are off"), pytest.warns(UserWarning):
        D.load_data("cifar10", download=False)
    assert not ran.exists()
