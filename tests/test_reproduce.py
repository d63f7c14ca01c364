"""The lecture's loss log, reproduced by full-length (200,000-step) runs.

Slow when the run cache is cold (the five runs train in a few minutes with the fast
trainer); `make test` pretrains them before pytest starts, so here they load.
"""
import json

import pytest
from makemore.__main__ import main
from makemore.show.report import TOLERANCE, reproduction_table


@pytest.mark.slow
def test_every_row_of_the_loss_log_within_tolerance():
    rows = reproduction_table()
    assert len(rows) == 12
    bad = [(r["title"], r["split"], round(r["delta"], 4)) for r in rows if not r["ok"]]
    assert not bad, f"off by more than {TOLERANCE}: {bad}"


@pytest.mark.slow
def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "table.json"
    assert main(["reproduce", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "12 of 12 numbers within 0.005" in printed
    rows = json.loads(out.read_text())
    assert {r["config"] for r in rows} >= {"original", "kaiming", "batchnorm_calibrated"}


def test_cli_exits_nonzero_when_a_row_is_off(monkeypatch, capsys):
    from makemore.runs import pretrain
    from makemore.show import report

    monkeypatch.setattr(pretrain, "pretrain", lambda *a, **k: {})
    monkeypatch.setattr(report, "reproduction_table", lambda: [
        {"config": "original", "title": "original", "split": "train", "lecture": 2.1245,
         "this_run": 2.2, "delta": 0.0755, "ok": False, "trainer": "eager", "seconds": 1.0}])
    assert main(["reproduce"]) == 1
    assert "NO" in capsys.readouterr().out
