"""The reproduce report renders: a self-contained HTML page, and a non-blank screenshot of it in
headless Chromium (skipped where Chromium is not installed)."""

import re
import shutil
import subprocess

import pytest

from overparam.report.html import markdown_to_html


def sample_page(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [3, 1, 2], "o-")
    fig.savefig(tmp_path / "fig.png", dpi=80)
    plt.close(fig)
    md = ("# Title\n\nSome **SUPPORTED** text with `code` & <tags>.\n\n"
          "- **NOT SUPPORTED** — a claim: p=0.3\n- second\n\n"
          "| a | b |\n|---|---|\n| 1 | 2 |\n\n![a figure](fig.png)\n")
    return markdown_to_html(md, tmp_path, "t")


def test_html_is_self_contained_and_escaped(tmp_path):
    page = sample_page(tmp_path)
    assert "data:image/png;base64," in page
    assert "&lt;tags&gt;" in page and "<tags>" not in page
    assert '<span class="supported">SUPPORTED</span>' in page
    assert "<table>" in page and "<li>" in page
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing to fetch


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_chromium_screenshot_is_not_blank(tmp_path):
    import numpy as np
    from matplotlib.image import imread

    (tmp_path / "report.html").write_text(sample_page(tmp_path))
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,800",
                    f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = imread(shot)[..., :3]
    assert img.shape[0] > 100 and img.shape[1] > 100
    dark = (img.mean(-1) < 0.5).mean()
    colors = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert 0.001 < dark < 0.9 and colors > 20  # text and a plotted figure, not a blank page


def test_a_bar_in_a_cell_never_splits_its_row(tmp_path):
    """A claim like ``||w_t - w*|| shrinks`` stays one cell in Markdown and in HTML."""
    from overparam.report.tables import Table

    t = Table("t", ["claim", "verdict"], [{"claim": "|w_t - w| falls\nfast", "verdict": "ok"}])
    row = t.markdown_body().splitlines()[2]
    assert row == "| \\|w_t - w\\| falls fast | ok |"
    html = markdown_to_html(t.markdown(), tmp_path, "t")
    assert "<td>|w_t - w| falls fast</td><td>ok</td>" in html


def test_captions_titles_and_verdict_explanations():
    """A figure's caption is the study's sentence, else a sentence from the stem (never the file
    name); a run with --set is never titled "(quick preset)"; each verdict says what would
    change it."""
    from pathlib import Path

    from overparam.report.html import chip, first_paragraph, study_summary, what_would_change
    from overparam.studies.base import StudyReport
    from overparam.studies.verdicts import Verdict, acc_arm, finalize

    r = StudyReport("edge_of_stability", "quick", figures=[Path("a/sharpness_vs_time.png")],
                    captions={"own": "Our sentence."})
    assert r.caption("own") == "Our sentence."
    assert r.caption("sharpness_vs_time") == ("Sharpness vs time, from the edge of stability "
                                              "study.")
    assert "![Sharpness vs time, from the edge of stability study.](sharpness_vs_time.png)" \
        in r.markdown()
    assert r.markdown().startswith("## edge_of_stability (quick preset)\n")
    r.overrides = ("epochs=2", "seeds=3")
    assert r.markdown().startswith("## edge_of_stability (quick preset with overrides: "
                                   "epochs=2, seeds=3)\n")
    assert first_paragraph("Title ``x``\nmore.\n\nSecond.") == "Title `x` more."
    assert study_summary("Title.\n\nOther.\n\nQuestion: does\n``x`` hold?\n\nMore.") == (
        "Title. Question: does `x` hold?")
    assert study_summary("Title.\n\nOther.") == "Title."
    assert chip("NOT SUPPORTED") == '<span class="chip no">NOT SUPPORTED</span>'
    missed, sig, weak = finalize([
        Verdict("a beats b", "s", criteria=True, p=0.001, test="Welch",
                arms=(acc_arm("small", [0.9, 1.0]),)),
        Verdict("c beats d", "s", criteria=True, p=0.001, test="Welch"),
        Verdict("e beats f", "s", criteria=True, p=0.2, test="Welch")])
    assert what_would_change(missed).startswith("INCONCLUSIVE because small: lowest seed "
                                                "90.00%, 9.0 pp short")
    assert what_would_change(sig).startswith("SUPPORTED (Holm-adjusted p = 0.002)")
    assert "not significant" in what_would_change(weak) and "0.2" in what_would_change(weak)


def test_csv_tables_are_numeric_with_short_names(tmp_path):
    """A ``mean ± std [lo, hi]`` cell becomes four numeric CSV columns; file names are short."""
    import csv
    import math

    from overparam.report.tables import Table, split_summary

    assert split_summary("65.07 ± 1.04 [63.90, 65.90]") == (65.07, 1.04, 63.9, 65.9)
    assert split_summary("-1e-3 ± 2") [:2] == (-0.001, 2.0) and math.isnan(
        split_summary("-1e-3 ± 2")[2])
    assert split_summary("never") is None and split_summary(3.0) is None
    t = Table("Test accuracy of every width: 3 seeds (percent; mean ± std [95% CI])",
              ["width", "test acc", "note"],
              [{"width": 8, "test acc": "65.07 ± 1.04 [63.90, 65.90]", "note": "x ± y"},
               {"width": 16, "test acc": "n/a", "note": "ok"}])
    assert t.slug() == "test_accuracy_of_every_width"
    assert Table("A" * 80, [], []).slug() == "a" * 40 and Table("x", [], [], name="dd").slug() == "dd"
    t.write_csv(tmp_path / "t.csv")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert list(rows[0]) == ["width", "test acc_mean", "test acc_std", "test acc_lo", "test acc_hi",
                             "note"]
    assert [float(rows[0][f"test acc_{p}"]) for p in ("mean", "std", "lo", "hi")] == [
        65.07, 1.04, 63.9, 65.9]
    assert rows[1]["test acc_mean"] == "nan" and rows[0]["note"] == "x ± y"


def test_thumbnails_are_small_pngs(tmp_path):
    import base64

    from overparam.report.figures import figure, save
    from overparam.report.html import png_data_uri, png_thumbnail_uri

    fig, ax = figure(10, 4)
    ax.plot([0, 1, 2], [1, 0, 1])
    png = save(fig, tmp_path, "f")
    full, thumb = png_data_uri(png), png_thumbnail_uri(png, width=200)
    raw = base64.b64decode(thumb.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(raw[16:20], "big") == 200
    assert len(thumb) < len(full) / 5
    assert png_thumbnail_uri(tmp_path / "missing.png") is None
