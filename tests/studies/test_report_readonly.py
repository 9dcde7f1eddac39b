"""`overparam report` only reads: it trains, probes and computes nothing, and an incomplete
store gets a partial report saying what is there and what is missing."""

import sqlite3

from overparam.cli import main
from overparam.store import RunStore
from tests.studies.test_studies import TINY


def run(study, out):
    argv = ["run", study, "--out", str(out)]
    for item in TINY[study]:
        argv += ["--set", item]
    assert main(argv) == 0


def counts(path):
    with sqlite3.connect(path) as c:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "probes", "computed", "series")}


def test_report_on_deleted_probes_runs_no_probe(tmp_path, capsys):
    run("sharpness", tmp_path)
    full = (tmp_path / "sharpness" / "report.md").read_text()
    with sqlite3.connect(tmp_path / "runs.sqlite") as c:
        c.execute("DELETE FROM probes")
    before = counts(tmp_path / "runs.sqlite")
    capsys.readouterr()
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert counts(tmp_path / "runs.sqlite") == before  # nothing measured, nothing written
    text = (tmp_path / "sharpness" / "report.md").read_text()
    assert "INCOMPLETE" in text and "probe lambda_max" in text and "18 of 18 planned runs" in text
    assert (tmp_path / "runs.md").exists()
    run("sharpness", tmp_path)  # measuring again restores the full report
    assert (tmp_path / "sharpness" / "report.md").read_text() == full


def test_report_on_a_half_finished_study(tmp_path, capsys):
    run("double_descent", tmp_path)
    with RunStore(tmp_path / "runs.sqlite") as s:
        victims = [r["run_id"] for r in s.runs()][:3]
    with sqlite3.connect(tmp_path / "runs.sqlite") as c:  # as if killed before these landed
        for rid in victims:
            for table in ("probes", "metrics", "series", "runs"):
                c.execute(f"DELETE FROM {table} WHERE run_id=?", (rid,))
        c.execute("DELETE FROM computed")
    before = counts(tmp_path / "runs.sqlite")
    capsys.readouterr()
    assert main(["report", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert counts(tmp_path / "runs.sqlite") == before
    text = (tmp_path / "double_descent" / "report.md").read_text()
    assert "INCOMPLETE" in text and "5 of 8 planned runs are stored" in text
    assert "1 of 2" in text  # a configuration with one seed missing
    assert "Stored runs" in (tmp_path / "runs.md").read_text()


def test_report_without_a_store_is_one_line(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "runs.sqlite" in err
    assert not (tmp_path / "runs.sqlite").exists()
