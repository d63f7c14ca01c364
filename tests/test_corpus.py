"""makemore.analysis.corpus: statistics of a list of names, and corpus_plots' figures of them."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from makemore.analysis import corpus  # noqa: E402
from makemore.data import build_dataset, build_vocab, make_splits  # noqa: E402
from makemore.nn import Embedding, Flatten, Linear, Sequential  # noqa: E402
from makemore.show import corpus_plots  # noqa: E402

WORDS = ["ann", "bob", "cecilia", "dan", "eve", "ann", "zoe", "al"]
VOCAB = build_vocab(["abcdefghijklmnopqrstuvwxyz"])


def test_lengths_strip_the_sampled_end_token():
    assert corpus.strip_end(["emma.", "ava", "."]) == ["emma", "ava", ""]
    assert corpus.lengths(["emma.", "ava"]).tolist() == [4, 3]


def test_length_summary():
    s = corpus.length_summary(WORDS)
    assert s == {"n-words": 8, "n-chars": 27, "len-min": 2, "len-max": 7,
                 "len-mean": pytest.approx(27 / 8), "len-mode": 3}


def test_letter_counts_and_summary():
    counts = corpus.letter_counts(["abba", "ca"])
    assert counts == {"a": 3, "b": 2, "c": 1} and list(counts) == ["a", "b", "c"]
    s = corpus.letter_summary(["aaab", "bc"], k=2)
    assert s["top-letters"] == "ab" and s["rare-letters"] == "cb"  # rarest first
    assert s["top-count"] == 3 and s["rare-count"] == 1
    assert s["top-share"] == pytest.approx(50.0)
    assert s["top2-share"] == pytest.approx(500 / 6) and s["rare2-share"] == pytest.approx(50.0)
    assert s["top-char"].data == "`a`" and s["rare2"].data == "`c`, `b`"


def test_vocab_grid_reads_index_as_row_plus_column():
    rows, header = corpus.vocab_grid(VOCAB, cols=9)
    assert header[0] == "index" and header[1:] == [f"+{c}" for c in range(9)]
    assert len(rows) == 3 and all(len(r) == 10 for r in rows)
    assert rows[1][0] == "9" and rows[1][1 + 5] == "`n`"  # n: index 14 = row 9 + 5
    assert rows[0][1] == "`.`"


def test_split_names_match_the_split_of_examples(words, splits):
    split = corpus.split_names(words)
    assert len(split.train) + len(split.val) + len(split.test) <= len(words)
    # the training names, read back from make_splits' targets (a name ends at each 0)
    targets = "".join(splits.vocab.itos[i] for i in splits.Ytr.tolist())
    assert set(targets.split(".")[:-1]) == split.train
    assert not split.heldout & split.train
    sizes = corpus.split_numbers(splits)
    assert (sizes["n-train"], sizes["n-val"], sizes["n-test"]) == (182625, 22655, 22866)
    assert sizes["n-examples"] == 182625 + 22655 + 22866


def test_split_names_of_a_small_list_follow_make_splits():
    words = [f"{a}{b}" for a in "abcdefghij" for b in "klmnopqrst"]
    split = corpus.split_names(words, seed=7)
    X, Y = build_dataset(sorted(split.val), 3, build_vocab(words))
    s = make_splits(words, seed=7)
    assert sorted(map(tuple, X.tolist())) == sorted(map(tuple, s.Xdev.tolist()))


def test_novelty_shares_and_new_names():
    split = corpus.NameSplit(frozenset({"ann", "bob"}), frozenset({"eve", "bob"}),
                             frozenset({"zoe"}))
    assert split.heldout == {"eve", "zoe"}  # bob is a training name
    names = ["ann.", "bob.", "eve.", "xyz.", "qq."]
    share = corpus.novelty(names, split)
    assert (share.train, share.heldout, share.new) == pytest.approx((0.4, 0.2, 0.4))
    assert share.real == pytest.approx(0.6)
    assert corpus.new_names(names, split) == ["xyz", "qq"]
    n = corpus.novelty_numbers(names, split, k=1)
    assert n["new"] == pytest.approx(40.0) and n["examples"].data == "`xyz`"
    table = corpus.novelty_table({0.5: names}, split).data
    assert "| 0.5 |" in table.replace("  ", " ").replace("  ", " ") and "40.0%" in table


def uniform() -> Sequential:
    """A model whose logits are all zero: every character has probability 1/27."""
    lin = Linear(3 * 27, 27)
    lin.weight, lin.bias = torch.zeros(81, 27), torch.zeros(27)
    emb = Embedding(27, 27)
    emb.weight = torch.eye(27)
    return Sequential([emb, Flatten(), lin])


def test_nll_per_char_of_a_uniform_model_is_log_27():
    m = uniform().train()
    assert corpus.nll_per_char(m, ["abc.", "de"], VOCAB) == pytest.approx(
        torch.log(torch.tensor(27.0)).item())
    assert m.training  # mode restored


def test_length_distribution_and_tails():
    lens = torch.tensor([1, 2, 2, 3, 25])
    d = corpus.length_distribution(lens, max_len=5)
    assert d.tolist() == pytest.approx([0.2, 0.4, 0.2, 0.0, 0.2])  # 25 counts as 5+
    n = corpus.length_numbers(torch.tensor([2, 3, 4, 10, 12]))
    assert n == pytest.approx({"len": 6.2, "short": 40.0, "long": 40.0})


def test_measure_quality_and_tables():
    split = corpus.NameSplit(frozenset({"a"}), frozenset(), frozenset())
    m = corpus.measure(uniform(), split, VOCAB, val=3.0, n=200, seed=1)
    assert len(m.names) == 200 and all("." not in s for s in m.names)
    assert m.nll == pytest.approx(torch.log(torch.tensor(27.0)).item(), abs=1e-5)
    num = m.numbers()
    assert num["train"] + num["heldout"] + num["novel"] == pytest.approx(100)
    other = corpus.Samples(["a"], corpus.Novelty(1.0, 0.0, 0.0), 2.0, 2.5, torch.tensor([1]))
    q = corpus.quality_numbers({"u": m, "o": other}, final="o")
    assert q["n-models"] == 2 and q["gap-final"] == pytest.approx(-0.5)
    assert q["corr"] == pytest.approx(-1.0)  # two points: real share falls with the loss
    assert q["above"].data.startswith("1 of the 2 networks lie above")
    table = corpus.sample_table({"u": m}, torch.tensor([4, 6])).data
    assert "3.0000" in table and "5.00" in table and "names.txt" in table


def test_shared_numbers_and_numbered_rows():
    left, right = ["ann", "bob", "cy"], ["bab", "ann", "cyd"]
    assert corpus.shared_numbers(left, right) == {"shared-20": 1, "row-apart": 1,
                                                  "same-start": 1}
    assert corpus.numbered(["a."], ["b."]) == [[1, "`a.`", "`b.`"]]


def test_plots_draw_what_they_are_given():
    ax = corpus_plots.plot_lengths(WORDS)
    assert sum(p.get_height() for p in ax.patches) == len(WORDS)
    ax = corpus_plots.plot_letter_counts(["ab", "a"])
    assert [p.get_height() for p in ax.patches] == [2, 1, 2]  # a, b, then '.' per name
    ax = corpus_plots.plot_length_distributions({"m": torch.tensor([3, 4])},
                                                torch.tensor([4, 4]), max_len=5)
    assert len(ax.lines) == 1 and len(ax.get_xticklabels()) == 5
    m = corpus.Samples(["a"], corpus.Novelty(0.5, 0.0, 0.5), 2.0, 2.5, torch.tensor([1]))
    axs = corpus_plots.plot_sample_quality({"x": m, "y": m}, final="x", mlps={"y"})
    assert [t.get_text() for t in axs[0].get_legend().get_texts()] == [
        "deep, BatchNorm (final)", "MLPs of the loss log"]
    ax = corpus_plots.plot_next_char(torch.full((27,), 1 / 27), torch.full((27,), 1 / 27), VOCAB)
    assert len(ax.patches) == 27
    matplotlib.pyplot.close("all")
