"""Every figure a study saves has a caption of its own (not the sentence made from the file
name): the stems are read from each study module's ``save(fig, ..., "stem")`` calls."""

import importlib
import inspect
import re

import pytest

from overparam.studies import REGISTRY, STUDIES
from overparam.studies.base import Study, StudyReport

STEM = re.compile(r"save\(fig, [^,]+, (f?)\"([^\"]+)\"\)")


def saved_stems(name: str) -> list[str]:
    source = inspect.getsource(importlib.import_module(REGISTRY[name].split(":")[0]))
    return [re.sub(r"\{.*", "", stem) if f else stem for f, stem in STEM.findall(source)]


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_saved_figure_has_a_caption(name):
    study = STUDIES[name]
    stems = saved_stems(name)
    assert stems or name in ("deep_linear",), f"{name}: no figure found"
    for stem in stems:
        caption = study.caption_for(stem)
        assert caption and len(caption) > 40, f"{name}: figure {stem!r} has no caption"


def test_report_takes_the_study_captions(tmp_path):
    class Fake(Study):
        name = "fake"
        CAPTIONS = {"alpha": "What alpha shows.", "beta_*": "One of the beta figures."}

        def analyze(self, cfg, ctx, preset):
            rep = StudyReport("fake", preset)
            rep.figures += [tmp_path / "alpha.png", tmp_path / "beta_1.png", tmp_path / "gamma.png"]
            rep.captions["gamma"] = "Set by the analysis."
            return rep

    rep = Fake().report(None, None, "quick")
    assert rep.caption("alpha") == "What alpha shows."
    assert rep.caption("beta_1") == "One of the beta figures."
    assert rep.caption("gamma") == "Set by the analysis."
    assert rep.caption("delta").startswith("Delta, from the fake study")
