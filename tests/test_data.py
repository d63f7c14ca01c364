"""names.txt: verification, parsing rules, vocabulary and the lecture's splits."""
from pathlib import Path

import pytest
import torch
from makemore import data
from makemore.data import DataError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty data cache and no mirror: every fetch starts from scratch."""
    d = tmp_path / "cache"
    monkeypatch.setenv("MAKEMORE_DATA_DIR", str(d))
    monkeypatch.delenv(data.NAMES_ENV, raising=False)
    return d


def write(tmp_path, text, name="names.txt"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return p


# --- the real file -----------------------------------------------------------------

def test_real_file_has_32033_names_in_order(words):
    assert len(words) == 32033
    assert words[:3] == ["emma", "olivia", "ava"]
    assert words[-1] == "zzyzx"


def test_vocab_is_the_lectures(words):
    v = data.build_vocab(words)
    assert len(v) == 27
    assert v.stoi["."] == 0 and v.stoi["a"] == 1 and v.stoi["z"] == 26
    assert v.decode(v.encode("emma")) == "emma"


def test_split_sizes_and_first_rows(splits):
    assert splits.Xtr.shape == (182625, 3) and splits.Ytr.shape == (182625,)
    assert splits.Xdev.shape == (22655, 3)
    assert splits.Xte.shape == (22866, 3)
    assert splits.Xtr.dtype == torch.int64
    # the first shuffled training name with seed 42 is 'yuheng'
    first = splits.vocab.decode(splits.Ytr[:7].tolist())
    assert first == "yuheng."
    assert splits.Xtr[:3].tolist() == [[0, 0, 0], [0, 0, 25], [0, 25, 21]]


def test_load_splits_is_one_object_however_it_is_called(splits):
    # the chapters, the explorers and the samplers call it in all three ways; each
    # form must find the splits already built
    assert data.load_splits(3) is splits and data.load_splits(block_size=3) is splits


def test_make_splits_does_not_shuffle_callers_list(words):
    some = words[:3000]  # any list; the whole file only made it slower
    copy = list(some)
    data.make_splits(copy)
    assert copy == some


def test_build_dataset_emma():
    X, Y = data.build_dataset(["emma"], block_size=3)
    v = data.build_vocab(["emma"])
    assert [v.decode(x) for x in X.tolist()] == ["...", "..e", ".em", "emm", "mma"]
    assert v.decode(Y.tolist()) == "emma."


def test_build_dataset_rejects_bad_block_size():
    with pytest.raises(ValueError, match="block_size"):
        data.build_dataset(["emma"], block_size=0)


# --- parsing rules -----------------------------------------------------------------

def test_whitespace_and_blank_lines_are_skipped(tmp_path):
    p = write(tmp_path, "  emma \r\n\n\t\nolivia\r\n   \nava")
    assert data.load_words(p) == ["emma", "olivia", "ava"]


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="contains no names"):
        data.load_words(write(tmp_path, ""))
    with pytest.raises(DataError, match="contains no names"):
        data.load_words(write(tmp_path, " \n\n  \n", "blank.txt"))


def test_boundary_token_in_a_name_names_the_line(tmp_path):
    with pytest.raises(DataError, match=r"line 3: 'a\.b' contains '\.'"):
        data.load_words(write(tmp_path, "emma\nolivia\na.b\n"))


@pytest.mark.parametrize("bad,ch", [("Emma", "E"), ("zoë", "ë"), ("ann-marie", "-"),
                                    ("bo b", " ")])
def test_characters_outside_a_z_name_line_and_char(tmp_path, bad, ch):
    with pytest.raises(DataError, match=f"line 2: .* contains {ch!r}"):
        data.load_words(write(tmp_path, f"emma\n{bad}\n"))


def test_not_utf8_is_an_error(tmp_path):
    with pytest.raises(DataError, match="not UTF-8"):
        data.load_words(write(tmp_path, b"emma\n\xff\xfe\n"))


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_words(tmp_path / "nope.txt")


# --- fetching and verification -------------------------------------------------------

@pytest.fixture(scope="session")
def verified_names():
    """The real names.txt, fetched (or copied from $MAKEMORE_NAMES) once."""
    return data.fetch_names()


def test_mirror_is_verified_and_cached(verified_names, cache, monkeypatch):
    monkeypatch.setenv(data.NAMES_ENV, str(verified_names))
    path = data.fetch_names()
    assert path == cache / "names.txt"
    assert data.sha256sum(path) == data.NAMES_SHA256
    assert list(cache.iterdir()) == [path]  # no temporary files left behind


def test_mirror_with_wrong_checksum_says_expected_and_got(cache, tmp_path, monkeypatch):
    bad = write(tmp_path, "emma\nolivia\n", "mirror.txt")
    monkeypatch.setenv(data.NAMES_ENV, str(bad))
    with pytest.raises(DataError) as e:
        data.fetch_names()
    msg = str(e.value)
    assert data.NAMES_SHA256 in msg and data.sha256sum(bad) in msg
    assert "expected" in msg and "got" in msg
    assert not (cache / "names.txt").exists()


def test_mirror_that_is_not_a_file(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(data.NAMES_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(DataError, match="does not point at a file"):
        data.fetch_names()


def test_no_network_says_how_to_use_a_local_copy(cache, monkeypatch):
    # port 9 on loopback refuses the connection: a deterministic "offline"
    monkeypatch.setattr(data, "NAMES_URL", "http://127.0.0.1:9/names.txt")
    with pytest.raises(DataError, match="MAKEMORE_NAMES") as e:
        data.fetch_names()
    assert "offline" in str(e.value)
    leftovers = list(cache.rglob("*")) if cache.exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers


def test_corrupt_cache_is_replaced(verified_names, cache, monkeypatch):
    cache.mkdir(parents=True)
    (cache / "names.txt").write_text("corrupt\n")
    monkeypatch.setenv(data.NAMES_ENV, str(verified_names))
    assert data.sha256sum(data.fetch_names()) == data.NAMES_SHA256


def test_readme_lists_every_environment_variable_the_code_reads():
    import re

    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("code/makemore/**/*.py"), *root.glob("tests/*.py"),
               *root.glob("book/_ext/*.py"), *root.glob("tools/*.py"),
               *root.glob("benchmarks/*.py")]
    read = {v for p in sources for v in re.findall(r"\bMAKEMORE_[A-Z_]+[A-Z]", p.read_text())}
    assert {"MAKEMORE_NAMES", "MAKEMORE_CACHE", "MAKEMORE_NO_TRAIN"} <= read
    table = (root / "README.md").read_text().split("## Environment variables")[1]
    listed = set(re.findall(r"^\| `(MAKEMORE_[A-Z_]+)", table, re.M))
    assert read <= listed, f"not in the README's table: {sorted(read - listed)}"
