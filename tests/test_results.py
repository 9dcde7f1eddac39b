"""overparam.results: DataFrames against the store's raw rows (read with sqlite3 and json, not
through the store), export round trips, models rebuilt from stored weights and from a
SeedResult equal to the trained ensemble's members, the study column, store migration."""

import json
import sqlite3
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from overparam import results
from overparam.config import DataConfig, ModelConfig, OptimConfig, TrainConfig, run_id
from overparam.errors import ConfigError
from overparam.store import RunStore
from overparam.sweep import land, plain_result
from overparam.train import loop
from overparam.train.interventions import StopAtLoss

CFG = TrainConfig(data=DataConfig(name="digits", n_train=100),
                  model=ModelConfig(name="mlp_w16"),
                  optim=OptimConfig(lr=0.05), epochs=2, batch_size=32,
                  interventions=(StopAtLoss(target=1e-3, every=2),))
PLAIN = TrainConfig(data=DataConfig(name="digits", n_train=100), model=ModelConfig(name="mlp_w8"),
                    epochs=2, batch_size=50)


READ = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


class _Recording(loop.Ensemble):
    """The training loop's ensemble, kept so that a test can read the trained members."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Recording.made.append(self)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store with 2 seeds of CFG (study "demo", weights kept, a per-step series, intervention
    results), 2 seeds of PLAIN trained outside a study, and one probe; plus the SeedResults and
    the trained ensemble of CFG."""
    out = tmp_path_factory.mktemp("lab")
    _Recording.made = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "Ensemble", _Recording)
        trained = loop.train(CFG, [0, 1], keep_state=True)
    ens = _Recording.made[-1]
    plain = loop.train(PLAIN, [3, 4], keep_state=True)
    with RunStore(out / "runs.sqlite") as store:
        for r in trained:
            land(CFG, r.seed, plain_result(r), store, out / "weights", study="demo")
        for r in plain:
            land(PLAIN, r.seed, plain_result(r), store)
        store.put_probe(trained[0].run_id, "k1", {"probe": "lambda_max", "samples": 50},
                        {"lambda_max": 3.25, "top": [3.25, 1.5], "extra": {"iters": 7}})
    return out, trained, ens


def raw(out, query):
    with sqlite3.connect(out / "runs.sqlite") as c:
        return c.execute(query).fetchall()


def test_runs_frame_matches_the_stored_rows(lab):
    out, trained, _ = lab
    df = results.runs(out)
    stored = raw(out, "SELECT run_id, seed, study, config, result FROM runs")
    assert len(df) == len(stored) == 4
    for rid, seed, study, config, result in stored:
        row = df.set_index("run_id").loc[rid]
        config, result = json.loads(config), json.loads(result)
        assert row["seed"] == seed
        assert (row["study"] if isinstance(row["study"], str) else None) == study
        assert row["data.name"] == "digits" and row["data.n_train"] == 100
        assert row["model.name"] == config["model"]["name"]
        # defaults left out of the canonical JSON are filled in from the dataclasses
        assert row["optim.lr"] == config.get("optim", {}).get("lr", OptimConfig().lr)
        assert row["optim.momentum"] == OptimConfig().momentum
        assert row["epochs"] == 2 and row["batch_size"] == config["batch_size"]
        for key in ("train_acc", "test_acc", "train_loss", "test_loss", "wall_s", "lr"):
            assert row[key] == result[key]
        assert row["result.steps"] == result["steps"]  # the run's steps, not the config's
    assert {s for s in df["study"] if isinstance(s, str)} == {"demo"}
    demo = results.runs(out, study="demo")
    assert sorted(demo["run_id"]) == sorted(r.run_id for r in trained)
    assert (demo["interventions.stop_at_loss.target"] == 1e-3).all()
    assert demo["target_met"].tolist() == [False, False]
    assert list(df.columns[:7]) == ["run_id", "study", "config_id", "kind", "seed", "data.name",
                                    "data.n_train"]


def test_history_series_and_probes_are_the_stored_values(lab):
    out, trained, _ = lab
    hist = results.history(out)
    metrics = raw(out, "SELECT run_id, epoch, name, value FROM metrics")
    assert len(hist) == 4 * 2  # runs x epochs
    indexed = hist.set_index(["run_id", "epoch"])
    for rid, epoch, name, value in metrics:
        got = indexed.loc[(rid, epoch), name]
        assert got == value or (value is None and np.isnan(got))
    assert list(hist.columns[:5]) == ["run_id", "study", "seed", "epoch", "step"]
    one = results.history(out, run_ids=[trained[1].run_id])
    assert one["epoch"].tolist() == [1, 2] and set(one["seed"]) == {1}

    ser = results.series(out)
    rows = raw(out, "SELECT run_id, name, step, value FROM series ORDER BY run_id, name, step")
    assert len(rows) > 0
    assert list(ser[["run_id", "name", "step", "value"]].itertuples(index=False, name=None)) \
        == rows
    only = results.series(out, name="train_loss", run_ids=[trained[0].run_id])
    assert set(only["run_id"]) == {trained[0].run_id} and len(only) == len(
        [r for r in rows if r[0] == trained[0].run_id and r[1] == "train_loss"])
    assert results.series(out, name="nothing").empty

    pr = results.probes(out)
    assert len(pr) == 1
    p = pr.iloc[0]
    assert p["probe"] == "lambda_max" and p["key"] == "k1" and p["spec.samples"] == 50
    assert p["result.lambda_max"] == 3.25 and json.loads(p["result.top"]) == [3.25, 1.5]
    assert p["result.extra.iters"] == 7 and p["study"] == "demo" and p["seed"] == 0


def test_export_round_trips_through_csv(lab, tmp_path):
    out, _, _ = lab
    paths = results.export(out, "csv", tmp_path / "x")
    assert [p.name for p in paths] == ["runs.csv", "history.csv", "series.csv", "probes.csv",
                                       "demo_seeds.csv"]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(p.name for p in paths)
    frames = {"runs": results.runs(out), "history": results.history(out),
              "series": results.series(out), "probes": results.probes(out),
              "demo_seeds": results.seed_table(out, "demo")}
    for path in paths:
        same(frames[path.stem], pd.read_csv(path, **READ), path.name)
    assert len(frames["demo_seeds"]) == 2
    again = results.export(out)  # default destination, overwritten in place
    assert again[0] == out / "export" / "runs.csv" and again[0].stat().st_size > 0
    with pytest.raises(ConfigError, match="csv, parquet"):
        results.export(out, "xlsx")
    with pytest.raises(ConfigError, match="runs.sqlite"):
        results.runs(tmp_path / "empty")


def test_parquet_needs_pyarrow_and_round_trips_when_present(lab, tmp_path, monkeypatch):
    out, _, _ = lab
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyarrow", None)  # as if not installed
        with pytest.raises(ConfigError, match=r"pyarrow is missing \(pip install pyarrow\)"):
            results.export(out, "parquet", tmp_path / "p")
    assert not (tmp_path / "p").exists()
    pytest.importorskip("pyarrow")
    paths = results.export(out, "parquet", tmp_path / "p")
    for path, want in zip(paths, (results.runs(out), results.history(out))):
        same(want, pd.read_parquet(path), path.name)


def same(want, back, name):
    """Equal columns and values, floats exactly; missing stays missing (NaN or None)."""
    assert list(back.columns) == list(want.columns) and len(back) == len(want), name
    for col in want.columns:
        a, b = want[col].tolist(), back[col].tolist()
        assert all((x == y) or (pd.isna(x) and pd.isna(y)) or str(x) == str(y)
                   for x, y in zip(a, b)), (name, col)


def test_models_rebuilt_equal_the_trained_members(lab):
    """SeedResult.model() is the trained ensemble's member k exactly (same module forward) and
    its batched forward to float32 rounding; load_model from the stored weights is the same
    network, bit for bit."""
    out, trained, ens = lab
    x = torch.randn(7, 64, generator=torch.Generator().manual_seed(5))
    batched = ens(x, shared=True)
    fresh = loop.build_members(CFG, [0], results_data())[0]
    for k, r in enumerate(trained):
        model = r.model()
        assert not model.training
        with torch.no_grad():
            got = model(x)
            assert torch.equal(got, ens.member(k).eval()(x))
            assert torch.allclose(got, batched[k], rtol=1e-5, atol=1e-6)
            assert torch.equal(results.load_model(out, r.run_id)(x), got)
            assert torch.equal(results.load_model(r)(x), got)
            assert torch.equal(loop.models(trained)[k](x), got)
        assert not torch.allclose(fresh(x), got)  # trained, not the initialization
    assert torch.equal(results.load_model(out, trained[0].run_id[:10])(x),
                       trained[0].model()(x))
    with pytest.raises(ConfigError, match="prefix"):
        results.load_model(out, "abc")
    with pytest.raises(FileNotFoundError, match="overparam train"):  # stored without weights
        results.load_model(out, run_id(PLAIN, 3))
    with pytest.raises(ValueError, match="keep_state=True"):
        loop.train(PLAIN, [0])[0].model()


def results_data():
    from overparam.data import load_config

    return load_config(CFG.data)


def test_a_study_run_records_its_study_and_shared_runs_keep_the_first(tmp_path):
    from overparam.cli import main
    from tests.studies.test_studies import TINY

    argv = ["run", "edge_of_stability", "--out", str(tmp_path)]
    for item in TINY["edge_of_stability"]:
        argv += ["--set", item]
    assert main(argv) == 0
    studies = raw(tmp_path, "SELECT study, COUNT(*) FROM runs GROUP BY study")
    assert len(studies) == 1 and studies[0][0] == "edge_of_stability" and studies[0][1] > 0
    n = studies[0][1]
    table = results.seed_table(tmp_path, "edge_of_stability")
    assert len(table) == n and set(table["study"]) == {"edge_of_stability"}
    assert {"tag.arm.label", "tag.arm.lr"} <= set(table.columns)  # the plan's labels
    # the study's directory holds the same per-seed table, written with its report
    written = pd.read_csv(tmp_path / "edge_of_stability" / "seeds.csv")
    assert list(written["run_id"]) == list(table["run_id"])
    assert np.allclose(written["test_acc"], table["test_acc"])
    # as if another study had trained one of these runs first: the plan still finds it
    victim = table["run_id"].iloc[0]
    with sqlite3.connect(tmp_path / "runs.sqlite") as c:
        c.execute("UPDATE runs SET study='other' WHERE run_id=?", (victim,))
    assert len(results.runs(tmp_path, study="edge_of_stability")) == n - 1
    assert len(results.seed_table(tmp_path, "edge_of_stability")) == n
    names = [p.name for p in results.export(tmp_path)]
    assert "edge_of_stability_seeds.csv" in names and "other_seeds.csv" in names
    # a run lands once: a second landing under another study keeps the first
    with RunStore(tmp_path / "runs.sqlite") as s:
        row = s.get(victim)
        assert not s.put(victim, row["config_id"], "train", row["seed"], row["config"],
                         row["result"], [], study="late")
        assert s.get(victim)["study"] == "other"


OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, config_id TEXT NOT NULL, kind TEXT NOT NULL,
    seed INTEGER NOT NULL, config TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs(run_id), epoch INTEGER NOT NULL,
    name TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, epoch, name));
INSERT INTO runs VALUES ('r0', 'c0', 'train', 0, '{"epochs":3}', '{"test_acc":0.5}', 1.0);
INSERT INTO metrics VALUES ('r0', 1, 'test_acc', 0.25);
"""


def test_an_old_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as c:
        c.executescript(OLD_SCHEMA)
    with RunStore(path) as s:
        assert s.get("r0")["result"] == {"test_acc": 0.5} and s.get("r0")["study"] is None
        assert s.put("r1", "c0", "train", 1, {"epochs": 3}, {"test_acc": 0.7},
                     [{"epoch": 1, "test_acc": 0.5}], study="s")
        assert [r["study"] for r in s.runs()] == [None, "s"] and s.studies() == ["s"]
        assert s.history("r0") == [{"epoch": 1, "test_acc": 0.25}]
    with RunStore(path) as s:  # opening again: nothing to migrate
        assert s.count() == 2
    cols = [r[1] for r in raw(tmp_path, "PRAGMA table_info(runs)")]
    assert cols[-1] == "study" and cols.count("study") == 1
    df = results.runs(tmp_path)
    assert df["epochs"].tolist() == [3, 3] and df["study"].tolist()[1] == "s"
    assert pd.isna(df["study"].tolist()[0]) and df["test_acc"].tolist() == [0.5, 0.7]
