"""Ensemble training vs the paper-style loop: 5 seeds of mlp_w128 on MNIST-1D.

Setting (the blueprint's Appendix A at MNIST-1D scale): 4,000 training samples, batch 128, SGD
momentum 0.9, LR 0.01, cosine annealing per epoch, 20 epochs, 5 seeds, one torch thread.

(a) paper style: a ``DataLoader(TensorDataset, shuffle=True)`` and an ``nn.Sequential`` MLP trained
    one seed after another, with the same bookkeeping as ours (running train loss/accuracy per
    epoch, test evaluation every epoch, a final clean pass over train and test);
(b) ours: ``overparam.train.train`` with the 5 seeds as one batched ensemble.

Part 1 times both in this process, interleaved, ``--repeats`` times (min / median). Part 2 times
whole commands as a user runs them, imports included: ``overparam train ... --json`` against this
file run as a script with ``--baseline-script``.

    OMP_NUM_THREADS=1 python benchmarks/ensemble.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

SEEDS = [0, 1, 2, 3, 4]
EPOCHS, BATCH, LR, MOMENTUM, WIDTH = 20, 128, 0.01, 0.9, 128


def paper_style(seeds=SEEDS, epochs=EPOCHS) -> list[float]:
    """Final test accuracies of the loop a paper's code would run, one seed after another."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from overparam.data import load

    ds = load("mnist1d")
    accs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(40, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(),
                              nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        loader = DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=BATCH, shuffle=True)
        loss_fn = nn.CrossEntropyLoss()

        def evaluate(model, x, y, loss_fn=loss_fn):
            model.eval()
            with torch.no_grad():
                out = model(x)
                res = loss_fn(out, y).item(), (out.argmax(1) == y).float().mean().item()
            model.train()
            return res

        history = []
        for _epoch in range(epochs):
            model.train()
            run_loss, run_correct, seen = 0.0, 0, 0
            for xb, yb in loader:
                opt.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                run_loss += loss.item() * len(yb)
                run_correct += (out.argmax(1) == yb).sum().item()
                seen += len(yb)
            sched.step()
            history.append((run_loss / seen, run_correct / seen, *evaluate(model, ds.x_test, ds.y_test)))
        evaluate(model, ds.x_train, ds.y_train)
        accs.append(evaluate(model, ds.x_test, ds.y_test)[1])
    return accs


def ours(seeds=SEEDS, epochs=EPOCHS) -> list[float]:
    from overparam.config import TrainConfig
    from overparam.data import load_config
    from overparam.train import train

    cfg = TrainConfig(epochs=epochs, batch_size=BATCH)
    results = train(cfg, seeds, data=load_config(cfg.data))
    return [r.test_acc for r in results]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def fmt(times):
    return f"min {min(times):6.2f} s  median {statistics.median(times):6.2f} s"


def in_process(repeats: int) -> None:
    from overparam.runtime import configure_process

    configure_process(threads=1)  # applies to both loops alike
    from overparam.data import load

    load("mnist1d")  # generate / cache once, outside the timings
    t_paper, t_ours = [], []
    acc_paper = acc_ours = None
    for _ in range(repeats):
        dt, acc_paper = timed(paper_style)
        t_paper.append(dt)
        dt, acc_ours = timed(ours)
        t_ours.append(dt)
    print("== in-process, interleaved, "
          f"{repeats} repeats: 5 seeds x {EPOCHS} epochs, mlp_w{WIDTH}, MNIST-1D ==")
    print(f"paper-style loop (DataLoader, seed after seed): {fmt(t_paper)}")
    print(f"overparam ensemble (5 seeds at once):           {fmt(t_ours)}")
    print(f"speed-up: {min(t_paper) / min(t_ours):.2f}x (min)  "
          f"{statistics.median(t_paper) / statistics.median(t_ours):.2f}x (median)")
    mp, mo = statistics.mean(acc_paper), statistics.mean(acc_ours)
    print(f"test acc paper-style: {[round(a, 4) for a in acc_paper]} mean {mp:.4f}")
    print(f"test acc overparam:   {[round(a, 4) for a in acc_ours]} mean {mo:.4f}")
    print(f"|difference of means| = {abs(mp - mo):.4f}")


def whole_commands(repeats: int) -> None:
    exe = shutil.which("overparam") or os.path.join(os.path.dirname(sys.executable), "overparam")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd_ours = [exe, "train", "--data", "mnist1d", "--model", "mlp_w128", "--seeds", "0-4",
                "--epochs", str(EPOCHS), "--json"]
    cmd_paper = [sys.executable, os.path.abspath(__file__), "--baseline-script"]
    t_paper, t_ours = [], []
    acc_ours = acc_paper = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run(cmd_paper, env=env, capture_output=True, text=True, check=True)
        t_paper.append(time.perf_counter() - t)
        acc_paper = json.loads(out.stdout)
        t = time.perf_counter()
        out = subprocess.run(cmd_ours, env=env, capture_output=True, text=True, check=True)
        t_ours.append(time.perf_counter() - t)
        acc_ours = [r["test_acc"] for r in json.loads(out.stdout)["results"]]
    print(f"== whole commands, imports included, {repeats} repeats ==")
    print(f"python paper_style_script.py:            {fmt(t_paper)}")
    print(f"overparam train ... --seeds 0-4 --json:  {fmt(t_ours)}")
    print(f"speed-up: {min(t_paper) / min(t_ours):.2f}x (min)  "
          f"{statistics.median(t_paper) / statistics.median(t_ours):.2f}x (median)")
    print(f"mean test acc: script {statistics.mean(acc_paper):.4f}  "
          f"overparam train {statistics.mean(acc_ours):.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-script", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--skip-commands", action="store_true")
    a = p.parse_args()
    if a.baseline_script:
        import torch

        torch.set_num_threads(1)
        print(json.dumps(paper_style()))
        return
    in_process(a.repeats)
    if not a.skip_commands:
        whole_commands(a.repeats)


if __name__ == "__main__":
    main()
