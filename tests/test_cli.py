import json

import pytest

from overparam.cli import main, parse_seeds


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
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    if argv[0] in ("run", "reproduce"):
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


def test_list_and_reproduce(tmp_path, capsys):
    assert main(["list"]) == 0
    assert "mnist1d" in capsys.readouterr().out
    from tests.studies.test_studies import TINY

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


def test_workers_flag_runs_a_process_pool(tmp_path, capsys):
    from tests.studies.test_studies import TINY

    argv = ["run", "optimizers", "--out", str(tmp_path), "--workers", "2"]
    for item in TINY["optimizers"]:
        argv += ["--set", item]
    assert main(argv) == 0
    assert "### Verdicts" in capsys.readouterr().out
