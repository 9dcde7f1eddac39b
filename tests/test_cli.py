import ast
import dataclasses
import importlib.metadata
import io
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from overparam.cli import (
    _datasets,
    _executor,
    _model_help,
    build_parser,
    main,
    module_docstring,
    parse_seeds,
    study_summary,
)
from overparam.progress import Ticker, duration, eta
from overparam.store import RunStore


@pytest.mark.parametrize("argv, field", [
    (["train", "--data", "imagenet"], "data"),
    (["train", "--model", "mlp_w0"], "model"),
    (["train", "--model", "vgg"], "model"),
    (["train", "--lr", "-0.1"], "lr"),
    (["train", "--label-noise", "1.0"], "label_noise"),
    (["train", "--label-noise", "-0.2"], "label_noise"),
    (["train", "--batch-size", "5000"], "batch_size"),
    (["train", "--optimizer", "lbfgs"], "optimizer"),
    (["train", "--seeds", "4-1"], "seeds"),
    (["train", "--epochs", "0"], "epochs"),
    (["train", "--device", "cuda:7"], "device"),
    (["train", "--epochs", "abc"], "--epochs"),
    (["run", "nonexistent"], "study"),
    (["reproduce", "--preset", "huge"], "preset"),
    (["reproduce", "--set", "nostudy.epochs=1"], "set"),
    (["run", "optimizers", "--set", "epochs=-"], "epochs"),
    (["run", "optimizers", "--executor", "spark"], "executor"),
    (["run", "lottery", "--set", "scope=diagonal"], "scope"),
    (["run", "optimizers", "--workers", "0"], "workers"),
    (["run", "lottery", "--set", "rate=1.5"], "rate"),
    (["run", "ntk_width", "--set", "parameterization=mu"], "parameterization"),
    (["run", "optimizers", "--set", "seeds=0"], "seeds"),
    (["run", "optimizers", "--set", "seeds=1"], "seeds"),  # statistics need two seeds
    (["run", "lottery", "--set", "lr_scaling=cubic"], "lr_scaling"),
    (["run", "double_descent", "--preset", "paper"], "could not be downloaded"),  # offline
    (["run", "optimizers", "--set", "data=mnist"], "MNIST files not found"),
    (["reproduce", "--preset", "paper"], "could not be downloaded"),
    (["run", "optimizers", "--set", "data=imagenet"], "data"),
    (["run", "optimizers", "--executor", "local", "--workers", "2"], "workers"),
    (["show", "nonexistent"], "study"),
    (["show", "optimizers", "--set", "epochs=-"], "epochs"),
    (["show", "optimizers", "--set", "nokey=1"], "nokey"),
    (["show", "optimizers", "--preset", "huge"], "preset"),
    (["export", "--format", "xlsx"], "format"),
    (["export"], "runs.sqlite"),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    if argv[0] in ("run", "reproduce", "show", "export"):
        argv = [*argv, "--out", str(tmp_path / "out")]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own type errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def _offline(*args, **kwargs):
    raise OSError("offline")


@pytest.mark.parametrize("command", [["run", "optimizers"], ["reproduce"],
                                     ["train", "--data", "digits"]])
def test_out_must_be_a_writable_directory(command, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for out, words in ((a_file, "is a file"), (a_file / "sub", "is a file"),
                       ("/proc/overparam-out", "not writable")):
        assert main([*command, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "out" in err and words in err, err
    assert a_file.read_text() == "mine" and sorted(tmp_path.iterdir()) == [a_file]


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,7") == [0, 2, 7]
    assert parse_seeds("0-1,5") == [0, 1, 5]


def test_train_json_and_resume(tmp_path, capsys):
    argv = ["train", "--data", "digits", "--model", "mlp_w16", "--seeds", "0-1", "--epochs", "2",
            "--json", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["config_id"]) == 64 and [r["seed"] for r in first["results"]] == [0, 1]
    assert {"train_acc", "test_acc", "train_loss", "test_loss"} <= set(first["results"][0])
    assert main(argv) == 0  # second time: read from the store
    second = json.loads(capsys.readouterr().out)
    assert second == first
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "mlp_w16" in (tmp_path / "runs.md").read_text()
    capsys.readouterr()
    assert main(["export", "--out", str(tmp_path)]) == 0  # the real overparam.results.export
    paths = capsys.readouterr().out.split()
    assert str(tmp_path / "export" / "runs.csv") in paths and all(Path(p).is_file() for p in paths)


def test_list_and_reproduce(tmp_path, capsys, monkeypatch):
    assert main(["list"]) == 0
    assert "mnist1d" in capsys.readouterr().out
    import overparam.studies
    from tests.studies.test_studies import TINY

    # reproduce runs every registered study: here only those with tiny settings (the others'
    # quick presets take minutes each; their own tests run them end to end)
    monkeypatch.setattr(overparam.studies, "REGISTRY",
                        {k: v for k, v in overparam.studies.REGISTRY.items() if k in TINY})
    argv = ["reproduce", "--out", str(tmp_path)]
    for study, items in TINY.items():
        argv += [x for item in items for x in ("--set", f"{study}.{item}")]
    assert main(argv) == 0
    text = (tmp_path / "report.md").read_text()
    assert "torch" in text and "## Verdicts" in text
    for study in TINY:
        assert f"### {study}" in text and (tmp_path / study / "report.md").exists()
    (tmp_path / "report.html").unlink()
    assert main(["report", "--out", str(tmp_path)]) == 0  # rebuilds the combined report too
    assert (tmp_path / "report.html").exists() and (tmp_path / "runs.md").exists()
    assert "## Joint discussion" in (tmp_path / "report.md").read_text()


# ---- the face: --help, --version, list -----------------------------------------------------

def test_help_and_list_are_fast_and_import_no_torch():
    """`overparam --help` and `overparam list` in a fresh interpreter: no torch, numpy or study
    module imported, and quick (loosely: < 1.5 s each on a busy machine; measured ~0.1 s)."""
    code = textwrap.dedent("""
        import sys, time
        t = time.perf_counter()
        from overparam.cli import main
        try:
            main(["--help"])
        except SystemExit as e:
            assert e.code == 0
        help_s = time.perf_counter() - t
        t = time.perf_counter()
        assert main(["list"]) == 0
        list_s = time.perf_counter() - t
        heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "numpy", "scipy")
                 or m.startswith("overparam.studies.") and m != "overparam.studies.runner"]
        print("RESULT", help_s, list_s, heavy, file=sys.stderr)
    """)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=60)
    wall = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("RESULT"))
    _, help_s, list_s, heavy = line.split(" ", 3)
    assert heavy == "[]"
    assert float(help_s) < 1.5 and float(list_s) < 1.5 and wall < 3.0
    assert "usage: overparam" in proc.stdout and "double_descent" in proc.stdout


def _subparsers(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_argument_has_help_with_its_default():
    parser = build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"list", "show", "train", "run", "report", "reproduce", "export"}
    for name, sub in commands.items():
        text = sub.format_help()
        for action in sub._actions:
            assert action.help, (name, action.dest)  # every argument explains itself
            shown = action.default not in (None, False, []) and action.option_strings \
                and action.dest != "help"
            if shown:  # ArgumentDefaultsHelpFormatter: the default is in the help
                assert f"(default: {action.default})" in " ".join(text.split()), \
                    (name, action.dest)
    run, train = (" ".join(commands[c].format_help().split()) for c in ("run", "train"))
    assert "(default: quick)" in run and "(default: auto)" in run
    assert "learning rate at --base-batch-size (default: 0.01)" in train


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == \
        f"overparam {importlib.metadata.version('overparam')}"


def test_list_reads_what_an_import_would_give(capsys):
    """`list` reads the registries from their source files (reference: the imported modules)
    and each study's docstring from the first token of its file (reference: ``ast``)."""
    from overparam.data.registry import DATASETS
    from overparam.models.registry import NAME_HELP
    from overparam.studies import REGISTRY

    assert _datasets() == list(DATASETS)
    assert _model_help() == NAME_HELP
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, target in REGISTRY.items():
        module = target.split(":")[0]
        path = Path(__import__("overparam").__file__).parent.joinpath(
            *module.split(".")[1:]).with_suffix(".py")
        line = next(x for x in out.splitlines() if x.strip().startswith(name + " "))
        if not path.is_file():
            assert "not written yet" in line
            continue
        doc = module_docstring(path)  # reference: a full parse of the file
        assert doc == ast.get_docstring(ast.parse(path.read_text()), clean=False)
        question, source = study_summary(doc)
        assert f"{question} [{source}]" in line


def test_study_summary():
    doc = ('Lazy vs rich training: the output scale alpha (Chizat, Oyallon & Bach 2019, "On lazy'
           '\ntraining", arXiv:1812.07956).\n\nQuestion: ... arXiv:1806.07572 and arXiv:1812.07956.')
    assert study_summary(doc) == ("Lazy vs rich training: the output scale alpha.",
                                  "arXiv:1812.07956, arXiv:1806.07572")
    assert study_summary("Flat minima (blueprint V-C).\n\nSeed 004 says so.") == \
        ("Flat minima (blueprint V-C).", "seed paper 004")
    assert study_summary(None) == ("(no description)", "-")


# ---- show ---------------------------------------------------------------------------------

def test_show_lists_every_key_and_the_plan(tmp_path, capsys):
    from overparam.studies.optimizers import Optimizers

    argv = ["show", "optimizers", "--set", "epochs=5", "--set", "seeds=2", "--out",
            str(tmp_path / "none"), "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    cfg = Optimizers().config("quick", ["epochs=5", "seeds=2"])
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for f in dataclasses.fields(cfg):  # every key, with its type
        assert f.name in rows and f.type in rows[f.name]
    assert " 5 (preset: 250) " in rows["epochs"] and "passes over the training set" in \
        rows["epochs"]
    assert "(a count;" in rows["seeds"]  # the shared block's help text
    plan = Optimizers().plan(cfg)
    n = sum(len(p.seeds) for p in plan)
    assert f"plan: {len(plan)} training configurations x 2 seeds = {n} runs" in out
    assert "no measured runs yet" in out
    assert not (tmp_path / "none").exists()  # show writes nothing


def test_show_estimates_from_measured_runs(tmp_path, capsys):
    """A missing run costs the mean wall time of its configuration's stored runs, else the
    median over all stored runs; computed here by hand from the same numbers."""
    from overparam.config import config_id, run_id, to_canonical_dict
    from overparam.studies.optimizers import Optimizers
    from overparam.studies.runner import estimate

    overrides = ["epochs=5", "seeds=2"]
    plan = Optimizers().plan(Optimizers().config("quick", overrides))
    first = plan[0].config
    with RunStore(tmp_path / "runs.sqlite") as s:
        s.put(run_id(first, 0), config_id(first), "train", 0, to_canonical_dict(first),
              {"wall_s": 30.0}, [])
        s.put("x" * 64, "y" * 64, "train", 0, {}, {"wall_s": 10.0}, [])  # another config
        s.put("z" * 64, "w" * 64, "train", 0, {}, {"wall_s": 14.0}, [])
    runs = sum(len(p.seeds) for p in plan)
    expected = 30.0 + statistics.median([30.0, 10.0, 14.0]) * (runs - 2)
    info = estimate(plan, tmp_path, workers=1)
    assert info["stored"] == 1 and info["measured"] == 3 and info["missing"] == runs - 1
    assert info["seconds"] == pytest.approx(expected)
    assert estimate(plan, tmp_path, workers=2)["seconds"] == pytest.approx(expected / 2)
    assert main(["show", "optimizers", "--out", str(tmp_path), "--workers", "1",
                 *[x for o in overrides for x in ("--set", o)]]) == 0
    out = capsys.readouterr().out
    assert f"stored in {tmp_path}: 1 of {runs} runs" in out
    assert f"~{duration(expected)} to train the {runs - 1} missing runs on 1 worker " in out


@dataclass(frozen=True)
class _HelpBase:
    HELP: ClassVar[dict[str, str]] = {"c": "from HELP", "a": "loses to metadata"}
    a: int = field(default=1, metadata={"help": "from metadata"})
    b: float = 0.5  # from a trailing comment
    c: str = "x"  # loses to HELP
    # from the comment
    # lines above
    d: tuple[int, ...] = (1, 2)

    e: int = 3

    def method(self) -> int:  # not a field
        return 1


@dataclass(frozen=True)
class _HelpChild(_HelpBase):
    a: int = 2  # an override keeps the base's metadata help
    f: int = 4


def test_setting_help_sources_and_fallback():
    from overparam.studies.runner import setting_help

    assert setting_help(_HelpChild) == {"a": "from metadata", "b": "from a trailing comment",
                                        "c": "from HELP", "d": "from the comment lines above"}


def test_describe_without_help_lists_type_and_default():
    from overparam.studies.base import Study
    from overparam.studies.runner import describe

    class Bare(Study):
        name = "bare"
        Config = _HelpChild
        PRESETS = {"quick": _HelpChild(), "paper": _HelpChild(e=30)}

    cfg, rows = describe(Bare(), "paper", ["f=7"])
    assert cfg == _HelpChild(e=30, f=7)
    by = {r.name: r for r in rows}
    assert [r.name for r in rows] == ["a", "b", "c", "d", "e", "f"]
    assert (by["e"].type, by["e"].default, by["e"].value, by["e"].help) == ("int", 30, 30, "")
    assert (by["f"].default, by["f"].value) == (4, 7)


# ---- progress -------------------------------------------------------------------------------

class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_plain_progress_lines_every_10_s_with_eta():
    clock, stream = _Clock(), io.StringIO()
    with Ticker("double_descent: training", 40, stream=stream, clock=clock) as tick:
        for _ in range(40):
            clock.t += 1.0  # one unit per second
            tick()
    lines = stream.getvalue().splitlines()
    # after 10, 20, 30 s: done = 10, 20, 30; ETA = elapsed / done * left = 30, 20, 10 s
    assert lines == ["double_descent: training 10/40 (ETA 30s)",
                     "double_descent: training 20/40 (ETA 20s)",
                     "double_descent: training 30/40 (ETA 10s)",
                     "double_descent: training 40/40 done in 40s"]


def test_progress_silent_when_asked_and_terminal_bar_shows_eta():
    stream = io.StringIO()
    with Ticker("x", 5, show=False, stream=stream) as tick:
        tick()
    assert stream.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    with Ticker("study: training", 3, stream=term) as tick:
        for _ in range(3):
            tick()
    text = term.getvalue()
    assert "ETA" in text and "study: training 3/3 done in" in text


def test_duration_and_eta():
    assert [duration(s) for s in (0, 5, 59.6, 80, 3599, 7500)] == \
        ["0s", "5s", "1m00s", "1m20s", "59m59s", "2h05m"]
    assert eta(12.0, 12, 40) == pytest.approx(28.0) and eta(5.0, 0, 40) is None


# ---- executors from the flags ---------------------------------------------------------------

def test_default_executor_uses_every_core(monkeypatch):
    from overparam.executors import LocalExecutor, ProcessExecutor, default_workers

    monkeypatch.delenv("OVERPARAM_WORKERS", raising=False)
    assert default_workers() == len(os.sched_getaffinity(0))
    parse = build_parser().parse_args
    monkeypatch.setenv("OVERPARAM_WORKERS", "2")
    ex = _executor(parse(["run", "optimizers"]))
    assert isinstance(ex, ProcessExecutor) and ex.workers == 2
    ex = _executor(parse(["reproduce"]))
    assert isinstance(ex, ProcessExecutor) and ex.workers == 2
    assert isinstance(_executor(parse(["run", "x", "--workers", "1"])), LocalExecutor)
    assert isinstance(_executor(parse(["run", "x", "--executor", "local"])), LocalExecutor)
    assert _executor(parse(["run", "x", "--workers", "3"])).workers == 3
    monkeypatch.setenv("OVERPARAM_WORKERS", "1")  # one core: in-process
    assert isinstance(_executor(parse(["run", "optimizers"])), LocalExecutor)


TINY_RUN = ["batch_sizes=32,64", "lrs=0.05,0.05", "epochs=1", "seeds=2", "n_train=256",
            "gd_stable_steps=20"]


def test_workers_1_and_2_store_identical_runs(tmp_path, capsys, monkeypatch):
    """The default process pool and in-process training store the same metrics, histories and
    verdicts; a rerun says what was stored and trains nothing."""
    from overparam.executors import ProcessExecutor

    pooled = []
    original = ProcessExecutor.run

    def spy(self, fn, tasks, after=None):
        pooled.append(len(tasks))
        return original(self, fn, tasks, after)

    monkeypatch.setattr(ProcessExecutor, "run", spy)
    got = {}
    for workers in ("1", "2"):
        argv = ["run", "optimizers", "--out", str(tmp_path / workers), "--workers", workers]
        argv += [x for item in TINY_RUN for x in ("--set", item)]
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert "optimizers: training 5/5 done in" in err  # plain progress: not a terminal
        with RunStore(tmp_path / workers / "runs.sqlite") as s:
            got[workers] = {r["run_id"]: ({k: v for k, v in r["result"].items()
                                           if k != "wall_s"}, s.history(r["run_id"]),
                                          s.series(r["run_id"])) for r in s.runs()}
        got[workers]["verdicts"] = (tmp_path / workers / "optimizers" / "verdicts.json"
                                    ).read_text()
    assert pooled == [5]  # --workers 2 trained on the pool, --workers 1 in-process
    assert len(got["1"]) == 11 and got["1"] == got["2"]
    assert main(argv) == 0  # rerun: everything stored
    err = capsys.readouterr().err
    assert "optimizers: resuming: 10 of 10 runs already stored" in err
    assert "training" not in err


# ---- reproduce and export -------------------------------------------------------------------

@dataclass(frozen=True)
class _FakeConfig:
    marks: tuple[int, ...] = (1, 0, -1)  # 1 supported, 0 not supported, -1 inconclusive


def _fake_study(name):
    from overparam.studies.base import Study, StudyReport
    from overparam.studies.verdicts import Verdict

    class Fake(Study):
        Config = _FakeConfig
        PRESETS = {"quick": _FakeConfig(), "paper": _FakeConfig()}

        def analyze(self, cfg, ctx, preset):
            rep = StudyReport(self.name, preset)
            rep.verdicts = [Verdict(claim=f"claim {i}", statistic="s", claim_id=f"c{i}",
                                    criteria={1: True, 0: False, -1: None}[m])
                            for i, m in enumerate(cfg.marks)]
            return rep

    Fake.name = name
    return Fake


def test_reproduce_says_where_it_is_and_what_it_found(tmp_path, capsys, monkeypatch):
    import overparam.studies

    module = types.ModuleType("overparam_fake_studies")
    module.A, module.B = _fake_study("alpha"), _fake_study("beta")
    monkeypatch.setitem(sys.modules, "overparam_fake_studies", module)
    monkeypatch.setattr(overparam.studies, "REGISTRY", {"alpha": "overparam_fake_studies:A",
                                                         "beta": "overparam_fake_studies:B"})
    assert main(["reproduce", "--out", str(tmp_path), "--workers", "1",
                 "--set", "beta.marks=1,1"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0] == "study 1/2: alpha" and lines[2] == "study 2/2: beta"
    assert lines[1].startswith("alpha: 1 SUPPORTED, 1 NOT SUPPORTED, 1 INCONCLUSIVE in ")
    assert lines[3].startswith("beta: 2 SUPPORTED, 0 NOT SUPPORTED, 0 INCONCLUSIVE in ")
    records = json.loads((tmp_path / "verdicts.json").read_text())
    marks = [r["verdict"] for r in records]
    assert out.splitlines() == [
        f"report: {tmp_path / 'report.md'}", f"html:   {tmp_path / 'report.html'}",
        f"verdicts: {marks.count('SUPPORTED')} SUPPORTED, {marks.count('NOT SUPPORTED')} NOT "
        f"SUPPORTED, {marks.count('INCONCLUSIVE')} INCONCLUSIVE (5 claims of 2 studies, "
        "Holm-adjusted together)"]
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()


def test_export_wiring(tmp_path, capsys, monkeypatch):
    calls = []

    def export(out, fmt="csv", dest=None):
        calls.append((out, fmt, dest))
        return [Path(dest) / f"runs.{fmt}"]

    monkeypatch.setitem(sys.modules, "overparam.results",
                        types.SimpleNamespace(export=export))
    RunStore(tmp_path / "runs.sqlite").close()
    assert main(["export", "--out", str(tmp_path), "--format", "parquet", "--dest",
                 str(tmp_path / "d")]) == 0
    assert calls == [(tmp_path, "parquet", str(tmp_path / "d"))]
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "runs.parquet")


def test_reproduce_runs_the_studies_that_train_nothing_beside(tmp_path, capsys, monkeypatch):
    """With a pool of two workers the computed-only studies run in a second, low-priority
    process; the combined verdicts equal those of everything in turn, in-process."""
    import overparam.studies
    from tests.studies.test_max_margin_study import TINY as MM
    from tests.studies.test_overparam_em_study import TINY as EM
    from tests.studies.test_studies import TINY

    names = ("optimizers", "max_margin", "overparam_em")
    monkeypatch.setattr(overparam.studies, "REGISTRY",
                        {k: v for k, v in overparam.studies.REGISTRY.items() if k in names})
    sets = {"optimizers": TINY["optimizers"], "max_margin": MM, "overparam_em": EM}
    argv = [x for s, items in sets.items() for item in items for x in ("--set", f"{s}.{item}")]
    verdicts = {}
    for workers in ("1", "2"):
        out = tmp_path / workers
        assert main(["reproduce", "--out", str(out), "--workers", workers, *argv]) == 0
        err = capsys.readouterr().err
        besides = [line for line in err.splitlines() if line.endswith("(beside)")]
        if workers == "2":
            assert "study 1/1: optimizers" in err and "beside the others" in err
            assert [b.split(":")[0] for b in besides] == ["max_margin", "overparam_em"]
        else:
            assert "study 3/3: overparam_em" in err and not besides
        verdicts[workers] = [{k: r[k] for k in ("study", "claim_id", "verdict", "statistic")}
                             for r in json.loads((out / "verdicts.json").read_text())]
        text = (out / "report.md").read_text()
        assert text.index("### optimizers") < text.index("### max_margin") < text.index(
            "### overparam_em")  # the registry's order, wherever a study ran
    assert verdicts["1"] == verdicts["2"]
