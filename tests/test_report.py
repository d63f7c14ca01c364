"""makemore.show.report: the loss log, the pass/fail table, timings and environment, on
made-up rows."""
import matplotlib.pyplot as plt
import pytest
from makemore import runs
from makemore.show import lecture, report


def row(config, split, lecture_loss, this_run, title=None):
    delta = this_run - lecture_loss
    return {"config": config, "title": title or config, "split": split, "lecture": lecture_loss,
            "this_run": this_run, "delta": delta, "ok": abs(delta) <= report.TOLERANCE,
            "trainer": "plain", "seconds": 1.0}


@pytest.fixture
def rows():
    """Three configurations of a loss log: a tiny negative delta, a rounded lecture
    number and a failing row, with BatchNorm last and not the best."""
    return [row("original", "train", 2.1245, 2.1276), row("original", "val", 2.1682, 2.1702),
            row("fix_softmax", "train", 2.07, 2.06996), row("fix_softmax", "val", 2.13, 2.1000),
            row("batchnorm_calibrated", "train", 2.0668, 2.0678, "BatchNorm (calibrated)"),
            row("batchnorm_calibrated", "val", 2.1048, 2.1056, "BatchNorm (calibrated)")]


def cells(md):
    return [[c.strip() for c in line.split("|")[1:-1]] for line in md.data.splitlines()[2:]]


def test_loss_log_groups_the_rows_by_configuration(rows):
    log = report.loss_log(rows)
    assert list(log) == ["original", "fix_softmax", "batchnorm_calibrated"]
    assert log["fix_softmax"]["val"]["this_run"] == 2.1
    table = cells(report.loss_log_table(rows))
    assert table[1] == ["fix_softmax", "2.07", "2.0700", "+0.0000", "2.13", "2.1000", "-0.0300"]


def test_loss_log_numbers_and_the_claim_that_batchnorm_does_not_win(rows):
    numbers = report.loss_log_numbers(rows)
    assert numbers["first-val"] == 2.1702 and numbers["last-val"] == 2.1056
    assert numbers["best-val"] == 2.1 and numbers["best-title"].data == "*fix_softmax*"
    assert numbers["max-delta"] == pytest.approx(0.03)
    assert (numbers["n-ok"], numbers["n-rows"]) == (5, 6)
    rows[-1] = row("batchnorm_calibrated", "val", 2.1048, 2.0, "BatchNorm (calibrated)")
    with pytest.raises(AssertionError, match="BatchNorm does not win"):
        report.loss_log_numbers(rows)


def test_reproduction_table_marks_failures_and_counts_passes(rows):
    table = cells(report.reproduction_markdown(rows))
    assert table[2][4:] == ["+0.0000", report.verdict(True)]  # no "-0.0000"
    assert table[3][4:] == ["-0.0300", "{bdg-danger}`FAIL`"]
    numbers = report.reproduction_numbers(rows)
    assert (numbers["n-pass"], numbers["n-rows"]) == (5, 6)
    assert numbers["fs-train"] == runs.LECTURE["fix_softmax"][0]
    assert numbers["n-specs"] == len(runs.RUNS)


def test_figures_mark_what_failed(rows):
    ax = report.plot_deltas(rows)
    assert [t.get_text() for t in ax.texts] == ["FAIL"]
    assert ax.get_xlim()[1] >= 0.03  # the failing point is inside the plot
    ax = report.plot_loss_log(rows)
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "original"
    assert len(ax.get_lines()) == 4  # lecture and this build, train and val
    plt.close("all")


def test_video_table_fails_on_a_different_number():
    shown = dict(lecture.VIDEO)
    assert all(r[-1] == "✓" for r in cells(report.video_table(shown)))
    what = next(iter(shown))
    with pytest.raises(AssertionError, match="not the video's numbers"):
        report.video_table({**shown, what: "0"})


def test_printout_numbers_fail_unless_every_line_is_the_notebooks():
    class Run:  # just what printout_numbers reads
        class history:
            trainer = "compiled"

    good = [lecture.Row(6, "params", "12297", "12297"),
            lecture.Row(7, "step 0", "3.3147", "3.3147"),
            lecture.Row(7, "step 10000", "2.1900", "2.1900")]
    numbers = report.printout_numbers(Run, good)
    assert numbers["trainer"].data == "`compiled`"
    assert (numbers["n-exact"], numbers["n-close"], numbers["n-steps"]) == (2, 0, 2)
    # one unit of the fourth decimal: counted, not an error (the compiled trainer's rounding)
    close = lecture.Row(7, "step 180000", "2.0198", "2.0199", lecture.LOSS_RTOL)
    numbers = report.printout_numbers(Run, good + [close])
    assert (numbers["n-exact"], numbers["n-close"], numbers["n-steps"]) == (2, 1, 3)
    with pytest.raises(AssertionError, match="not the notebook's printout"):
        report.printout_numbers(Run, good + [lecture.Row(7, "step 20000", "2.1000", "2.1002",
                                                         lecture.LOSS_RTOL)])
    with pytest.raises(AssertionError, match="not the notebook's printout"):
        report.printout_numbers(Run, [lecture.Row(6, "params", "12297", "12298")] + good[1:])


def test_timing_counts_each_job_once():
    def t(run, job, seconds, size):
        return {"run": run, "title": run, "steps": 200_000, "trainer": "compiled",
                "seconds": seconds, "job": job, "job_runs": size, "job_seconds": seconds,
                "train": 2.0, "val": float("nan")}

    timing = [t("a", "j1", 60.0, 1), t("b", "j2", 600.0, 2), t("c", "j2", 600.0, 2)]
    assert report.timing_numbers(timing) == {"n-runs": 3, "n-jobs": 2, "total-min": 11.0}
    table = cells(report.timing_markdown(timing))
    assert table[1] == ["`b`", "compiled", "200,000", "600", "2", "2.0000", "diverged"]
    assert table[-1][:4] == ["**total** (2 jobs)", "", "", "**660**"]


def test_environment_table_says_what_a_run_did_not_record():
    table = cells(report.environment_table({"torch": "2.0"}))
    assert table[1][0] == "PyTorch" and table[1][2] == "2.0"
    assert table[0][2] == "?"  # no python version recorded


def test_terminal_table_has_no_negative_zero(rows):
    text = report.format_table(rows)
    lines = text.splitlines()
    assert "-0.0000" not in text and len(lines) == 2 + len(rows)
    assert lines[4].split()[-2:] == ["+0.0000", "yes"] and lines[5].split()[-1] == "NO"
