"""makemore.show.lecture: the notebook's printouts, recomputed and compared."""
import pytest
from makemore import models, train
from makemore.show import lecture


def test_bonus_cells_reproduce():
    rows = lecture.compare(lecture.bonus_printout())
    assert {r.cell for r in rows} == {23, 24}
    assert len(rows) == 6 + 8  # the separator lines are not rows
    assert not lecture.mismatches(rows)
    # forward values are exact; only a gradient may be a float32 ulp off
    assert all(r.exact for r in rows if "grad" not in r.label)


def test_param_counts_match_the_video_and_the_notebook():
    counts = lecture.param_counts()
    for what, shown in lecture.VIDEO.items():
        if what in counts:
            assert str(counts[what]) == shown, what
    assert str(counts["MLP + BatchNorm, b1 removed"]) == lecture.NOTEBOOK[6]
    assert str(counts["deep + BatchNorm, biases removed"]) == lecture.NOTEBOOK[13]


def test_loss_log_is_the_registrys_numbers_unrounded():
    """LOSS_LOG holds the loss log's rows as typed; runs.LECTURE rounds them (and takes
    the running-statistics row from cell 10's printout)."""
    from makemore import runs

    assert set(lecture.LOSS_LOG) == set(runs.LECTURE) - {"batchnorm"}
    for key, (train_loss, val_loss) in lecture.LOSS_LOG.items():
        assert runs.LECTURE[key] == (round(float(train_loss), 4), round(float(val_loss), 4))
    cell10 = [float(line.split()[1]) for line in lecture.NOTEBOOK[10].splitlines()]
    assert runs.LECTURE["batchnorm"] == tuple(round(x, 4) for x in cell10)


def test_split_printout_is_the_notebooks_format():
    losses = {"train": 2.0674145221710205, "val": 2.1056840419769287, "test": 2.0}
    assert lecture.split_printout(losses) == lecture.NOTEBOOK[10]
    rows = lecture.compare({10: lecture.split_printout(losses)})
    assert [(r.label, r.exact) for r in rows] == [("train", True), ("val", True)]


def test_initial_losses_match_the_video(splits):
    for init, what in (("original", "initial loss, original MLP"),
                       ("fix_softmax", "initial loss, softmax fixed")):
        g = models.new_generator()
        h = train.train(models.mlp(init, generator=g), splits.Xtr, splits.Ytr, steps=1,
                        generator=g, progress=False)
        assert f"{10 ** h.lossi[0]:.2f}" == lecture.VIDEO[what]


def test_split_labels_and_values():
    assert lecture._split("layer 11 (      Tanh): mean +0.00, std 0.65, saturated: 1.69%") == (
        "layer 11 (Tanh)", "+0.00, 0.65, 1.69%")
    assert lecture._split("weight  (30, 100) | mean +0.000246 | std 9.241077e-03 "
                          "| grad:data ratio 4.881091e-02") == (
        "weight (30, 100)", "+0.000246, 9.241077e-03, 4.881091e-02")
    assert lecture._split("  10000/ 200000: 2.0322") == ("step 10000", "2.0322")
    assert lecture._split("x grad std:  0.0315") == ("x grad std", "0.0315")
    assert lecture._split("carpah.") == ("", "carpah.")


def test_rows_compare_at_the_printed_precision():
    exact = lecture.Row(15, "layer 2 (Tanh)", "-0.00, 0.63, 2.78%", "-0.00, 0.63, 2.78%")
    assert exact.same and exact.exact
    # a forward line has no tolerance: one unit in the last printed digit is a difference
    assert not lecture.Row(15, "l", "-0.00, 0.63, 2.78%", "-0.00, 0.63, 2.79%").same
    grad = lecture.GRAD_RTOL
    close = lecture.Row(16, "l", "-0.000000, 2.640702e-03", "+0.000000, 2.640701e-03", grad)
    assert close.same and not close.exact
    far = lecture.Row(16, "l", "-0.000000, 2.640702e-03", "-0.000000, 2.640802e-03", grad)
    assert not far.same
    assert lecture.max_rel_diff([close]) == pytest.approx(1e-9 / 2.640702e-3, rel=1e-3)
    assert "cell 16" in lecture.mismatches([far])[0]
    # different words around the numbers are never "close"
    assert not lecture.Row(16, "l", "mean 1.0", "std 1.0", grad).same


def test_compare_rejects_what_the_notebook_did_not_print():
    with pytest.raises(KeyError, match="printed nothing in cell 8"):
        lecture.compare({8: "1"})
    with pytest.raises(ValueError, match="printed 2 lines"):
        lecture.compare({19: "train 2.4"})


def test_table_groups_the_names():
    rows = lecture.compare({20: lecture.NOTEBOOK[20]})
    table = lecture.table(rows)
    assert table.count("\n") == 1 + 4  # header, rule, four rows of five names
    assert "names 16-20" in table and "✗" not in table


@pytest.mark.slow
def test_lecture_cut_reproduces_the_notebook(splits):
    cut = lecture.lecture_cut(splits)
    assert len(cut.history.lossi) == lecture.CUT_STEPS == 1001
    rows = lecture.compare(cut.printed)
    assert not lecture.mismatches(rows)
    # everything but the backward pass is the notebook's to the last printed digit
    assert all(r.exact for r in rows if r.cell not in (16, 17))
    # one step fewer is not the notebook's network: the losses after the cut change
    short = lecture.lecture_cut(splits, steps=1000)
    assert short.printed[19] != lecture.NOTEBOOK[19]


@pytest.mark.slow
def test_plain_loop_reproduces_the_batchnorm_mlp_printout(splits):
    g = models.new_generator()
    model = models.mlp("batchnorm", generator=g)
    h = train.train(model, splits.Xtr, splits.Ytr, steps=10_001, generator=g, progress=False)
    printed = lecture.NOTEBOOK[7].splitlines()[:2]  # steps 0 and 10,000
    assert [lecture._loss_line(i, 10 ** h.lossi[i]) for i in (0, 10_000)] == printed
