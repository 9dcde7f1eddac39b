"""The study protocol: typed config with presets, plan, run (resumable), analyze, report.

A study's config is a frozen dataclass; ``PRESETS`` maps ``quick`` (CPU minutes on MNIST-1D) and
``paper`` (the blueprint's protocol, for a GPU) to instances. ``plan(cfg)`` lists the training
configurations and seeds; ``run`` trains what the store lacks (ensembles of seeds, final weights
saved for the probes) and measures probes once per run; ``analyze`` reads the store and returns
tables, figures and claim-by-claim verdicts with their statistics.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overparam.config import TrainConfig, canonical_json, run_id
from overparam.errors import ConfigError
from overparam.report.tables import Table
from overparam.store import RunStore
from overparam.studies.verdicts import Verdict, claims_table, finalize, write_verdicts


@dataclass(frozen=True)
class PlannedRun:
    """One training configuration of a study, with its seeds and labels for the analysis."""

    config: TrainConfig
    seeds: tuple[int, ...]
    tags: tuple[tuple[str, Any], ...] = ()

    def tag(self, key: str, default: Any = None) -> Any:
        return dict(self.tags).get(key, default)


@dataclass
class StudyReport:
    study: str
    preset: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # numbers for the joint discussion
    overrides: tuple[str, ...] = ()  # the ``--set KEY=VALUE`` items this report ran with
    captions: dict[str, str] = field(default_factory=dict)  # figure stem -> caption sentence

    def finalize(self) -> StudyReport:
        """Decide the verdicts as one family (Holm) and label them with this study."""
        for v in self.verdicts:
            v.study = self.study
        self.verdicts = finalize(self.verdicts)
        return self

    def settings_label(self) -> str:
        """``"quick preset"``, or ``"quick preset with overrides: epochs=2, seeds=3"``."""
        label = f"{self.preset} preset"
        return label + (" with overrides: " + ", ".join(self.overrides) if self.overrides else "")

    def caption(self, stem: str) -> str:
        """The caption of figure ``stem``: the study's own sentence, else one made from the
        stem and the study name (never the bare file name)."""
        if self.captions.get(stem):
            return self.captions[stem]
        words = " ".join(stem.replace("-", " ").replace("_", " ").split()) or "figure"
        return f"{words[0].upper()}{words[1:]}, from the {self.study.replace('_', ' ')} study."

    def markdown(self) -> str:
        parts = [f"## {self.study} ({self.settings_label()})\n"]
        if self.verdicts:
            parts.append(claims_table(self.verdicts).markdown())
        parts += [n + "\n" for n in self.notes]
        if self.verdicts:
            parts.append("### Verdicts\n\n" + "\n".join(v.line() for v in self.verdicts) + "\n")
        parts += [t.markdown() for t in self.tables]
        parts += [f"![{self.caption(p.stem).replace(']', ')')}]({p.name})\n"
                  for p in self.figures]
        return "\n".join(parts)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.csv"):  # tables of an earlier version of this report
            stale.unlink()
        seen: dict[str, int] = {}
        for t in self.tables:  # two tables with one short name: name, name_2, ...
            stem = t.slug()
            seen[stem] = seen.get(stem, 0) + 1
            t.write_csv(directory / (f"{stem}.csv" if seen[stem] == 1 else
                                     f"{stem}_{seen[stem]}.csv"))
        write_verdicts(directory / "verdicts.json", self.verdicts)
        path = directory / "report.md"
        path.write_text(self.markdown())
        return path


class Study:
    """Base class: subclasses set ``name``, ``Config``, ``PRESETS`` and implement ``plan``,
    ``analyze`` and optionally ``measure`` (probes on trained runs) or ``run`` (a study whose
    runs depend on each other, trained in stages with ``ctx.train_all``).

    A study that trains nothing plans no runs and computes in ``measure`` or ``analyze`` through
    ``ctx.computed`` (results cached in the store by a hash of their settings).
    """

    name = "study"
    Config: type = object
    PRESETS: dict[str, Any] = {}
    # figure stem -> caption: what is plotted, over which seeds, what the bands and marks are;
    # a key ending in "*" captions every stem with that prefix (figures drawn in a loop)
    CAPTIONS: dict[str, str] = {}

    def config(self, preset: str, overrides: Sequence[str] = ()) -> Any:
        """The preset with ``overrides`` applied, validated (the plan is built once to check
        every training configuration)."""
        from overparam.studies.settings import Training

        if preset not in self.PRESETS:
            raise ConfigError("preset", preset, "one of " + ", ".join(self.PRESETS))
        cfg = apply_overrides(self.PRESETS[preset], overrides)
        if isinstance(cfg, Training):
            cfg.check()
        self.plan(cfg)
        return cfg

    def plan(self, cfg: Any) -> list[PlannedRun]:
        """Every training configuration of the study with its seeds (possibly none)."""
        return []

    def measure(self, cfg: Any, ctx: StudyContext, plan: list[PlannedRun]) -> None:
        """Probes on trained runs (default: none)."""

    def analyze(self, cfg: Any, ctx: StudyContext, preset: str) -> StudyReport:
        raise NotImplementedError

    def report(self, cfg: Any, ctx: StudyContext, preset: str) -> StudyReport:
        """``analyze``, with this study's figure captions, its verdicts decided (Holm)."""
        rep = self.analyze(cfg, ctx, preset)
        for path in rep.figures:
            stem = Path(path).stem
            caption = self.caption_for(stem)
            if caption and not rep.captions.get(stem):
                rep.captions[stem] = caption
        return rep.finalize()

    @classmethod
    def caption_for(cls, stem: str) -> str | None:
        """The caption ``CAPTIONS`` gives figure ``stem`` (exactly, or by a ``prefix*`` key)."""
        return cls.CAPTIONS.get(stem) or next(
            (c for k, c in cls.CAPTIONS.items() if k.endswith("*") and stem.startswith(k[:-1])),
            None)

    def run(self, cfg: Any, ctx: StudyContext) -> None:
        plan = self.plan(cfg)
        ctx.train_all(plan, f"{self.name}: training")
        self.measure(cfg, ctx, plan)


def ancestors(cfg: TrainConfig) -> list[TrainConfig]:
    """The runs whose stored weights ``cfg`` reads: the configurations nested in its
    interventions (a mask's parent), theirs, and so on."""
    out = []
    for inter in cfg.interventions:
        for name in getattr(inter, "NESTED", ()):
            parent = getattr(inter, name)
            if isinstance(parent, TrainConfig):
                out += [parent, *ancestors(parent)]
    return out


class Missing(Exception):
    """What a read-only analysis needs and the store does not hold (a run, a probe, a result)."""


@dataclass
class StudyContext:
    """Where a study reads and writes: the run store, weights, the report directory.

    ``readonly`` (``overparam report``): nothing is trained, probed or computed; whatever is not
    stored raises :class:`Missing`, and the caller reports what is there instead.

    ``study`` is the study whose runs land through this context (recorded on each run row; a run
    already stored keeps the study that trained it first).
    """

    out: Path
    store: RunStore
    device: str = "cpu"
    show_progress: bool = False
    executor: Any = None  # overparam.executors.*Executor; None: in-process
    readonly: bool = False
    study: str | None = None
    _data: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def weights_dir(self) -> Path:
        return self.out / "weights"

    def data(self, cfg: Any) -> Any:
        """The data set of a :class:`~overparam.config.DataConfig` on this device (loaded once)."""
        if cfg not in self._data:
            from overparam.data import load_config

            self._data[cfg] = load_config(cfg, device=self.device)
        return self._data[cfg]

    def missing(self, p: PlannedRun) -> tuple[int, ...]:
        """Seeds of a planned run whose row or weights are not stored yet."""
        from overparam.sweep import missing_seeds

        return missing_seeds(p.config, p.seeds, self.store, self.weights_dir)

    def train_all(self, plan: Sequence[PlannedRun], label: str, study: str | None = None) -> None:
        """Train every missing seed of ``plan`` on the executor; this process alone writes.
        The runs land as trained by ``study`` (default: this context's study). A run that reads
        another planned run's weights (:func:`ancestors`) starts once that one has landed;
        the rest run as workers free up."""
        from overparam.config import to_canonical_dict
        from overparam.executors import LocalExecutor, train_task

        if self.readonly:
            raise RuntimeError("a read-only study context trains nothing")
        todo = [(p, seeds) for p in plan if (seeds := self.missing(p))]
        executor = self.executor or LocalExecutor()
        if getattr(executor, "workers", 1) >= 2 and len(todo) > 2:
            # longest first (Graham's LPT rule): a long task queued last would leave a worker
            # idle at the end of the stage
            todo.sort(key=lambda t: -self.cost(t[0].config, len(t[1])))
        tasks = [(to_canonical_dict(p.config), seeds, self.device, str(self.weights_dir))
                 for p, seeds in todo]
        index = {canonical_json(p.config): i for i, (p, _) in enumerate(todo)}
        after = [{index[a] for a in map(canonical_json, ancestors(p.config)) if a in index}
                 for p, _ in todo]
        with self.progress(label, len(tasks)) as tick:
            for task, out in executor.run(train_task, tasks, after):
                self.ingest(task[0], out, study=study)
                tick()

    def cost(self, cfg: TrainConfig, seeds: int) -> float:
        """A training run's relative cost, to order a stage: samples processed x seeds x the
        model's parameters (x2 on the autograd path)."""
        import math

        import torch

        from overparam.models import build
        from overparam.train.loop import output_count

        data = self.data(cfg.data)
        n = data.n_train
        batch = cfg.resolved_batch_size(n)
        steps = cfg.steps if cfg.steps is not None else cfg.epochs * math.ceil(n / batch)
        try:
            with torch.device("meta"):
                params = sum(p.numel() for p in build(cfg.model.name, data.input_shape,
                                                      output_count(data)).parameters())
        except (RuntimeError, NotImplementedError, TypeError):  # a model meta cannot build
            params = 1
        return steps * batch * seeds * params * (2.0 if cfg.needs_autograd else 1.0)

    def ingest(self, config: dict[str, Any], results: list[dict[str, Any]],
               study: str | None = None) -> None:
        """Save the weights and artifacts, then land each run in its own transaction (never
        twice), recorded as trained by ``study`` (default: this context's study)."""
        from overparam.config import TrainConfig, from_dict
        from overparam.sweep import land

        cfg = from_dict(TrainConfig, config)
        for r in results:
            land(cfg, r["seed"], r, self.store, self.weights_dir, study=study or self.study)

    def results(self, p: PlannedRun) -> list[dict[str, Any]]:
        """Stored runs of a planned configuration (result, history, config), seed order."""
        out = []
        for s in p.seeds:
            rid = run_id(p.config, s)
            row = self.store.get(rid)
            if row is None:
                raise Missing(f"run {rid[:12]} (seed {s}) of {canonical_json(p.config)}")
            row["history"] = self.store.history(rid)
            out.append(row)
        return out

    def series(self, cfg: TrainConfig, seed: int, name: str) -> tuple[Any, Any]:
        """``(steps, values)`` of one per-step series of a stored run."""
        got = self.store.series(run_id(cfg, seed), name)
        if name not in got:
            raise Missing(f"series {name} of run {run_id(cfg, seed)[:12]} (seed {seed})")
        return got[name]

    def model(self, cfg: TrainConfig, seed: int, data: Any):  # noqa: ANN201
        """The trained model of one run, rebuilt from its saved weights."""
        from overparam.train.loop import build_members
        from overparam.weights import WeightStore

        m = build_members(cfg, [seed], data)[0]
        m.load_state_dict(WeightStore(self.weights_dir).load(run_id(cfg, seed)))
        return m.to(self.device)

    def probe(self, cfg: TrainConfig, seed: int, spec: dict[str, Any],
              compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A probe result of one run, computed once and then read from the store."""
        rid = run_id(cfg, seed)
        key = _key(spec)
        return self._once(lambda: self.store.get_probe(rid, key),
                          lambda got: self.store.put_probe(rid, key, spec, got), compute,
                          f"probe {spec.get('probe', key)} of run {rid[:12]} (seed {seed})")

    def computed(self, study: str, spec: dict[str, Any], compute: Callable[[], dict[str, Any]]
                 ) -> dict[str, Any]:
        """The result of a computation that trains nothing (a closed form, an exact lab),
        computed once per settings ``spec`` and then read from the store."""
        key = _key({"study": study, **spec})
        return self._once(lambda: self.store.get_computed(key),
                          lambda got: self.store.put_computed(key, study, spec, got), compute,
                          f"{study} computation {spec.get('what', key)}")

    def _once(self, get: Callable[[], Any], put: Callable[[Any], Any],
              compute: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
        """Read a stored result; compute and store it when missing (never when read-only)."""
        got = get()
        if got is None:
            if self.readonly:
                raise Missing(what)
            got = compute()
            put(got)
        return got

    def figure_dir(self, study: str) -> Path:
        """``out/<study>`` (created)."""
        d = self.out / study
        d.mkdir(parents=True, exist_ok=True)
        return d

    def progress(self, label: str, total: int):  # noqa: ANN201
        """``with ctx.progress(label, total) as tick: ... tick()``: a bar with its ETA on a
        terminal, plain lines at most every 10 s elsewhere (:class:`overparam.progress.Ticker`);
        silent unless ``show_progress``."""
        from overparam.progress import Ticker

        return Ticker(label, total, self.show_progress)


def _key(spec: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def apply_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
    """``["widths=8,16,32", "epochs=5"]`` applied to a frozen study config, types from its fields."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError("set", item, "KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ConfigError("set", key, "a field of the study: " + ", ".join(fields))
        current = getattr(cfg, key)
        changes[key] = _parse_like(key, raw.strip(), current)
    return dataclasses.replace(cfg, **changes)


def _parse_like(key: str, raw: str, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            kind = type(current[0]) if current else float
            return tuple(kind(v) for v in raw.split(",") if v.strip())
        if current is None:
            return None if raw.lower() == "none" else (float(raw) if "." in raw else int(raw))
        return raw
    except ValueError:
        raise ConfigError(key, raw, f"a value like {current!r}") from None


def study_json(study: str, preset: str, cfg: Any) -> str:
    return json.dumps({"study": study, "preset": preset,
                       "config": json.loads(canonical_json(cfg)),
                       "config_full": dataclasses.asdict(cfg)}, sort_keys=True, indent=1)


__all__ = ["Missing", "PlannedRun", "Study", "StudyContext", "StudyReport", "Table", "Verdict",
           "apply_overrides", "study_json"]
