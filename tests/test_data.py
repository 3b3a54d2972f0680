"""Tests for fastmlp.data: IDX files, locating and loading data sets, downloads, splits."""

import gzip
import hashlib
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fastmlp import data
from fastmlp.data import (
    BUNDLED_MNIST_DIR,
    DATASETS,
    FILES,
    content_sha256,
    download_dataset,
    find_dataset,
    load_dataset,
    read_idx,
    search_dirs,
    split,
    verify_checksums,
    write_idx,
)
from fastmlp.errors import ConfigError, DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No $FASTMLP_DATA, and a cache dir in tmp_path, so that a user's files never interfere."""
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def small_dataset(directory, gz=True, n_train=12, n_test=6, rows=4, cols=5, seed=0):
    """Write a tiny valid data set (four IDX files) into ``directory``; return its arrays."""
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(FILES, arrays):
        write_idx(directory / (stem + (".gz" if gz else "")), array)
    return arrays


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------

def test_mnist_shapes_dtypes_and_label_counts(mnist):
    assert mnist.name == "mnist"
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.train_labels.shape == (60000,)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.test_labels.shape == (10000,)
    for a in (mnist.train_images, mnist.train_labels, mnist.test_images, mnist.test_labels):
        assert a.dtype == np.uint8
        assert a.flags.c_contiguous
    assert mnist.n_classes == 10
    assert np.bincount(mnist.train_labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.test_labels, minlength=10).sum() == 10000
    assert Path(mnist.source) == BUNDLED_MNIST_DIR


def test_bundled_gz_files_match_sha256_table():
    for stem in FILES:
        digest = hashlib.sha256((BUNDLED_MNIST_DIR / f"{stem}.gz").read_bytes()).hexdigest()
        assert digest == DATASETS["mnist"].gz_sha256[stem], stem


def test_bundled_contents_match_sha256_table():
    digests = verify_checksums(BUNDLED_MNIST_DIR, "mnist")
    assert sorted(p.name for p in digests) == sorted(f"{s}.gz" for s in FILES)


def test_bundled_readme_lists_the_table():
    readme = (BUNDLED_MNIST_DIR / "README.md").read_text()
    for table in (DATASETS["mnist"].gz_sha256, DATASETS["mnist"].sha256):
        for digest in table.values():
            assert digest in readme


def test_fashion_mnist_loads_from_debian_package(fashion_mnist, clean_env):
    assert Path(fashion_mnist.source) == FASHION_DIR
    assert fashion_mnist.train_images.shape == (60000, 28, 28)
    assert fashion_mnist.test_images.shape == (10000, 28, 28)
    assert np.bincount(fashion_mnist.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion_mnist.test_labels).tolist() == [1000] * 10
    # Found by the default search too, with no data_dir:
    assert find_dataset("fashion-mnist")[FILES[0]].parent == FASHION_DIR


def test_fashion_mnist_contents_match_sha256_table(fashion_mnist):
    verify_checksums(FASHION_DIR, "fashion-mnist")


def test_read_idx_returns_owned_writeable_array(mnist):
    labels = read_idx(BUNDLED_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert labels.flags.owndata and labels.flags.writeable
    np.testing.assert_array_equal(labels, mnist.test_labels)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------

def test_book_split_is_views_of_the_two_halves(mnist):
    s = split(mnist, "book")
    assert s.mode == "book"
    assert s.train_x is mnist.train_images and s.train_y is mnist.train_labels
    assert s.val_x.shape == s.test_x.shape == (5000, 28, 28)
    assert s.val_y.shape == s.test_y.shape == (5000,)
    assert s.test_full_x.shape == (10000, 28, 28)
    np.testing.assert_array_equal(s.val_x, mnist.test_images[:5000])
    np.testing.assert_array_equal(s.val_y, mnist.test_labels[:5000])
    np.testing.assert_array_equal(s.test_x, mnist.test_images[5000:])
    np.testing.assert_array_equal(s.test_y, mnist.test_labels[5000:])
    for view in (s.val_x, s.test_x, s.test_full_x):
        assert np.shares_memory(view, mnist.test_images)  # views, not copies


def test_stratified_split_halves_every_class(mnist):
    s = split(mnist, "stratified", seed=0)
    assert len(s.val_y) == len(s.test_y) == 5000
    total = np.bincount(mnist.test_labels, minlength=10)
    val = np.bincount(s.val_y, minlength=10)
    test = np.bincount(s.test_y, minlength=10)
    np.testing.assert_array_equal(val + test, total)
    assert np.all(np.abs(val - test) <= 1)
    assert np.all(val == total // 2) or np.all(np.minimum(val, test) == total // 2)
    # The halves partition the test set: every image lands in exactly one of them.
    key = lambda x, y: {img.tobytes() + bytes([lab]) for img, lab in zip(x, y)}  # noqa: E731
    both = key(s.val_x, s.val_y) | key(s.test_x, s.test_y)
    assert both == key(mnist.test_images, mnist.test_labels)
    np.testing.assert_array_equal(s.test_full_y, mnist.test_labels)


def test_stratified_split_is_seeded(mnist):
    a = split(mnist, "stratified", seed=1)
    b = split(mnist, "stratified", seed=1)
    c = split(mnist, "stratified", seed=2)
    np.testing.assert_array_equal(a.val_x, b.val_x)
    assert not np.array_equal(a.val_x, c.val_x)


def test_unknown_split_mode(mnist):
    with pytest.raises(ConfigError, match="known modes: book, stratified"):
        split(mnist, "random")


# ---------------------------------------------------------------------------------------------
# IDX round trips
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2), (0, 28, 28)])
def test_write_read_round_trip(tmp_path, name, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind


def test_write_idx_gzip_is_reproducible_and_header_is_standard(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == first  # mtime 0: same bytes every time
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    assert raw == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]) + bytes(range(24))


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "labels.gz", array)
    os.rename(tmp_path / "labels.gz", tmp_path / "labels-idx1-ubyte")
    np.testing.assert_array_equal(read_idx(tmp_path / "labels-idx1-ubyte"), array)


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.float32))
    assert os.listdir(tmp_path) == []


def test_write_idx_replaces_atomically(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.zeros(3, dtype=np.uint8))
    write_idx(path, np.ones(5, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(path), np.ones(5, dtype=np.uint8))
    assert os.listdir(tmp_path) == ["x"]


# ---------------------------------------------------------------------------------------------
# Bad files: each message names the file and the problem
# ---------------------------------------------------------------------------------------------

def _images(n=10):
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_truncated_raw_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, _images())
    with open(path, "r+b") as f:
        f.truncate(16 + 7000)
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "truncated" in msg
    assert "expected 7856 bytes" in msg and "found 7016" in msg and "10x28x28" in msg
    assert "intact copy" in msg and "download it" not in msg  # a user's file: no false hint


def test_truncated_contents_in_valid_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(5000)
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "truncated" in msg
    assert "expected 7856 decompressed bytes" in msg and "found 5016" in msg


def test_cut_gzip_stream(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, _images(50))
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "cut short" in str(e.value)


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, _images(50))
    blob = bytearray(path.read_bytes())
    blob[200:260] = bytes(60)
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(path) in str(e.value) and "corrupt" in str(e.value)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    with open(path, "ab") as f:
        f.write(b"junk")
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "4 bytes of trailing data" in msg
    assert "expected 18 bytes" in msg and "found 22" in msg


def test_trailing_bytes_inside_gzip(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3, 9, 9])
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match="2 bytes of trailing data"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "not an IDX file" in msg and "50 4b" in msg


def test_wrong_element_type(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    header = bytes([0, 0, 0x0D, 1, 0, 0, 0, 2])
    path.write_bytes(header + np.zeros(2, ">f4").tobytes())
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "0x0D (float32)" in msg and "only 0x08" in msg


def test_too_short_and_empty(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="too short to be an IDX file"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # header cut inside the dimensions
    with pytest.raises(DataError, match="truncated: expected at least 16"):
        read_idx(path)


def test_gz_name_but_not_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "raw", np.arange(5, dtype=np.uint8))
    os.rename(tmp_path / "raw", path)
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "not gzip-compressed" in msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot open"):
        read_idx(tmp_path / "nope")


def test_image_label_count_mismatch(tmp_path):
    small_dataset(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert "count mismatch" in msg and "12 images" in msg and "11 labels" in msg
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg
    assert str(tmp_path / "train-labels-idx1-ubyte.gz") in msg


def test_label_out_of_range(tmp_path):
    k = int(small_dataset(tmp_path)[1].max()) + 1  # classes: those of the training labels
    labels = np.zeros(6, dtype=np.uint8)
    labels[4] = 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in msg
    assert f"label 10 at index 4 is not a class of the training labels (0..{k - 1})" in msg
    assert "download it" not in msg  # the user's own directory: nothing to download


def test_images_and_labels_swapped(tmp_path):
    small_dataset(tmp_path)
    os.rename(tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "tmp.gz")
    os.rename(tmp_path / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-images-idx3-ubyte.gz")
    os.rename(tmp_path / "tmp.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="expected images with 3 dimensions"):
        load_dataset("mnist", data_dir=tmp_path)


def test_train_and_test_image_sizes_differ(tmp_path):
    small_dataset(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((6, 5, 5), dtype=np.uint8))
    with pytest.raises(DataError, match="4x5 images but .* holds 5x5"):
        load_dataset("mnist", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# Locating data sets
# ---------------------------------------------------------------------------------------------

def test_unknown_dataset_name_lists_known_names():
    with pytest.raises(ConfigError, match="known data sets: fashion-mnist, mnist"):
        load_dataset("cifar10")
    with pytest.raises(ConfigError, match="known data sets"):
        verify_checksums(BUNDLED_MNIST_DIR, "cifar10")


def test_other_name_with_data_dir_reads_that_directory(tmp_path):
    arrays = small_dataset(tmp_path / "kmnist")
    ds = load_dataset("kmnist", data_dir=tmp_path / "kmnist")
    assert ds.name == "kmnist" and ds.n_classes == int(arrays[1].max()) + 1
    np.testing.assert_array_equal(ds.train_images, arrays[0])
    with pytest.raises(DataError, match="--download fills only fastmlp's cache"):
        load_dataset("kmnist", data_dir=tmp_path / "empty", download=True)
    with pytest.raises(DataError) as e:
        load_dataset("kmnist", data_dir=tmp_path / "empty")
    assert "does not exist" in str(e.value) and "--download" not in str(e.value)


def test_search_order(clean_env, monkeypatch):
    tmp = clean_env
    assert search_dirs("mnist") == [tmp / "cache" / "fastmlp" / "mnist", BUNDLED_MNIST_DIR]
    monkeypatch.setenv("FASTMLP_DATA", str(tmp / "env"))
    assert search_dirs("fashion-mnist") == [
        tmp / "env" / "fashion-mnist",
        tmp / "cache" / "fastmlp" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    assert search_dirs("mnist", data_dir=tmp / "mine") == [tmp / "mine"]


def test_cache_dir_without_xdg(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data.cache_dir("mnist") == Path.home() / ".cache" / "fastmlp" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, per XDG spec
    assert data.cache_dir("mnist") == Path.home() / ".cache" / "fastmlp" / "mnist"


def test_mnist_falls_back_to_bundled_copy(clean_env):
    files = find_dataset("mnist")
    assert {p.parent for p in files.values()} == {BUNDLED_MNIST_DIR}


def test_first_complete_directory_wins(clean_env, monkeypatch):
    tmp = clean_env
    monkeypatch.setenv("FASTMLP_DATA", str(tmp / "env"))
    small_dataset(tmp / "cache" / "fastmlp" / "mnist", gz=False)
    assert find_dataset("mnist")[FILES[0]] == tmp / "cache" / "fastmlp" / "mnist" / FILES[0]
    small_dataset(tmp / "env" / "mnist")
    ds = load_dataset("mnist")
    assert ds.source == str(tmp / "env" / "mnist")
    assert ds.train_images.shape == (12, 4, 5) and ds.test_labels.shape == (6,)


def test_raw_file_preferred_over_gz(tmp_path):
    small_dataset(tmp_path, gz=True)
    small_dataset(tmp_path, gz=False, seed=1)
    files = find_dataset("mnist", data_dir=tmp_path)
    assert all(p.suffix != ".gz" for p in files.values())


def test_missing_everywhere_lists_places_and_fixes(clean_env, monkeypatch):
    tmp = clean_env
    monkeypatch.setenv("FASTMLP_DATA", str(tmp / "env"))
    (tmp / "cache" / "fastmlp" / "fashion-mnist").mkdir(parents=True)
    write_idx(tmp / "cache" / "fastmlp" / "fashion-mnist" / f"{FILES[1]}.gz",
              np.zeros(3, dtype=np.uint8))
    info = replace(DATASETS["fashion-mnist"], fallback_dir=tmp / "usr-share")
    monkeypatch.setitem(DATASETS, "fashion-mnist", info)
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist")
    msg = str(e.value)
    assert f"{tmp / 'env' / 'fashion-mnist'}: does not exist" in msg
    assert (f"{tmp / 'cache' / 'fastmlp' / 'fashion-mnist'}: has {FILES[1]}.gz but is missing "
            f"{FILES[0]}[.gz]") in msg
    assert f"{tmp / 'usr-share'}: does not exist" in msg
    for fix in ("--data-dir", "FASTMLP_DATA", "apt-get install dataset-fashion-mnist",
                "--download"):
        assert fix in msg


def test_explicit_data_dir_is_the_only_place(clean_env):
    empty = clean_env / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=empty)  # no silent fallback to the bundled copy
    msg = str(e.value)
    assert f"{empty}: holds none of the four files" in msg
    assert str(BUNDLED_MNIST_DIR) not in msg


# ---------------------------------------------------------------------------------------------
# Downloads (no network: file:// mirrors and fake fetchers)
# ---------------------------------------------------------------------------------------------

def _mirror_of_small_dataset(tmp_path, monkeypatch, name="mnist"):
    """A file:// mirror serving a tiny data set, and DATASETS[name] patched to trust it."""
    mirror = tmp_path / "mirror"
    small_dataset(mirror)
    sha = {stem: content_sha256(mirror / f"{stem}.gz") for stem in FILES}
    info = replace(DATASETS[name], sha256=sha, mirrors=(mirror.as_uri() + "/",),
                   fallback_dir=tmp_path / "no-fallback")
    monkeypatch.setitem(DATASETS, name, info)
    return mirror


def test_download_real_files_from_file_mirror(tmp_path):
    dest = download_dataset("mnist", tmp_path / "dest", mirrors=[BUNDLED_MNIST_DIR.as_uri() + "/"])
    assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in FILES)
    for stem in FILES:
        assert (dest / f"{stem}.gz").read_bytes() == (BUNDLED_MNIST_DIR / f"{stem}.gz").read_bytes()


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    small_dataset(mirror)  # valid IDX files, but not MNIST
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as e:
        download_dataset("mnist", dest, mirrors=[mirror.as_uri() + "/"])
    msg = str(e.value)
    actual = content_sha256(mirror / f"{FILES[0]}.gz")
    assert f"{FILES[0]}.gz" in msg and "SHA-256 mismatch" in msg
    assert DATASETS["mnist"].sha256[FILES[0]] in msg and actual in msg
    assert os.listdir(dest) == []


def test_download_tries_next_mirror_and_only_missing_files(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    for stem in FILES[:3]:  # already there: must not be fetched
        shutil.copy(BUNDLED_MNIST_DIR / f"{stem}.gz", dest)
    urls = []

    def fetch(url):
        urls.append(url)
        if url.startswith("https://down.example/"):
            raise OSError("connection refused")
        if url.startswith("https://bad.example/"):
            return b"<html>not found</html>"
        return (BUNDLED_MNIST_DIR / url.rsplit("/", 1)[1]).read_bytes()

    mirrors = ["https://down.example/", "https://bad.example/", "https://good.example/"]
    download_dataset("mnist", dest, mirrors=mirrors, fetch=fetch)
    assert urls == [m + f"{FILES[3]}.gz" for m in mirrors]
    verify_checksums(dest, "mnist")


def test_download_all_mirrors_fail(tmp_path):
    def fetch(url):
        raise OSError("network is unreachable")

    with pytest.raises(DataError) as e:
        download_dataset("fashion-mnist", tmp_path, mirrors=["https://a/", "https://b/"],
                         fetch=fetch)
    msg = str(e.value)
    assert "https://a/train-images-idx3-ubyte.gz: network is unreachable" in msg
    assert "https://b/train-images-idx3-ubyte.gz" in msg
    assert os.listdir(tmp_path) == []


def test_load_dataset_downloads_into_fastmlp_data(clean_env, monkeypatch):
    tmp = clean_env
    _mirror_of_small_dataset(tmp, monkeypatch)
    monkeypatch.setenv("FASTMLP_DATA", str(tmp / "env"))
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist")
    ds = load_dataset("mnist", download=True)
    assert ds.source == str(tmp / "env" / "mnist")
    assert ds.train_images.shape == (12, 4, 5)
    assert load_dataset("mnist").source == ds.source  # found without downloading next time


def test_load_dataset_downloads_into_cache_never_into_data_dir(clean_env, monkeypatch):
    # Issue 12, severe 5: --download used to fill an incomplete --data-dir with real files and
    # train on the mix. Downloads go only into the cache; the user's directory is untouched and
    # the error lists what it holds and what it lacks.
    tmp = clean_env
    _mirror_of_small_dataset(tmp, monkeypatch, "fashion-mnist")
    mine = tmp / "mine"
    mine.mkdir()
    own = np.arange(7, dtype=np.uint8)
    write_idx(mine / FILES[1], own)
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", data_dir=mine, download=True)
    msg = str(e.value)
    assert f"{mine}: has {FILES[1]} but is missing {FILES[0]}[.gz], {FILES[2]}[.gz]" in msg
    assert "--download fills only fastmlp's cache" in msg
    assert os.listdir(mine) == [FILES[1]]  # nothing was written into it
    assert not (tmp / "cache").exists()    # and nothing downloaded either
    ds = load_dataset("fashion-mnist", download=True)
    assert ds.source == str(tmp / "cache" / "fastmlp" / "fashion-mnist")


def test_verify_checksums_reports_mismatch_and_missing(tmp_path):
    small_dataset(tmp_path)
    os.remove(tmp_path / f"{FILES[3]}.gz")
    with pytest.raises(DataError) as e:
        verify_checksums(tmp_path, "mnist")
    msg = str(e.value)
    assert f"{tmp_path / FILES[0]}.gz: SHA-256 mismatch" in msg
    assert DATASETS["mnist"].sha256[FILES[0]] in msg
    assert f"{tmp_path / FILES[3]}[.gz]: missing" in msg


def test_only_a_downloadable_copy_is_told_to_download_it_again(clean_env):
    # Issue 12: a damaged file in the user's own --data-dir must not be told to "download it
    # again"; a damaged file in fastmlp's cache of a known data set is.
    cache = clean_env / "cache" / "fastmlp" / "mnist"
    small_dataset(cache)
    (cache / f"{FILES[2]}.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(DataError) as e:
        load_dataset("mnist")
    assert str(cache) in str(e.value) and "download it again" in str(e.value)
    mine = clean_env / "mine"
    shutil.copytree(cache, mine)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=mine)
    assert "intact copy of your data" in str(e.value) and "download it" not in str(e.value)
