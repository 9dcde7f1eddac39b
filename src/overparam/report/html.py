"""A self-contained HTML page from the reports' Markdown: figures embedded as data URIs.

Covers the Markdown the reports write: headings, paragraphs, bullet lists, pipe tables, bold,
images and inline code. Everything is escaped; no script, no network access to view the page.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d2125;line-height:1.45}
h1{border-bottom:2px solid #334;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #c9ced6;padding:.3em .6em;text-align:right}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #dde;margin:.5em 0}
code{background:#f3f4f6;padding:0 .2em}
.supported{color:#0a6b2d;font-weight:600}.not{color:#a11;font-weight:600}
.inconclusive{color:#8a5a00;font-weight:600}
"""


def _inline(text: str, base: Path) -> str:
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", _bold, out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return out


def _bold(m: re.Match) -> str:
    word = m.group(1)
    cls = {"SUPPORTED": "supported", "NOT SUPPORTED": "not",
           "INCONCLUSIVE": "inconclusive"}.get(word)
    return f'<span class="{cls}">{word}</span>' if cls else f"<b>{word}</b>"


def _image(alt: str, src: str, base: Path) -> str:
    path = (base / src).resolve()
    if path.suffix.lower() == ".png" and path.exists():
        data = base64.b64encode(path.read_bytes()).decode()
        return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(alt)}</figcaption></figure>")
    return f"<p>[missing figure {html.escape(src)}]</p>"


def markdown_to_html(text: str, base: Path, title: str) -> str:
    """Render the reports' Markdown subset; image paths are relative to ``base``."""
    body: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = re.match(r"^(#{1,6}) (.*)$", line)
        if m:
            n = len(m.group(1))
            body.append(f"<h{n}>{_inline(m.group(2), base)}</h{n}>")
            i += 1
            continue
        m = re.match(r"^!\[(.*?)\]\((.*?)\)$", line.strip())
        if m:
            body.append(_image(m.group(1), m.group(2), base))
            i += 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip().replace("\x00", "|") for c in lines[i].strip()
                             .strip("|").replace("\\|", "\x00").split("|")])
                i += 1
            head, rest = rows[0], [r for r in rows[1:] if not all(set(c) <= {"-", ":"} for c in r)]
            body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c, base)}</th>"
                                                      for c in head) + "</tr></thead><tbody>")
            body += ["<tr>" + "".join(f"<td>{_inline(c, base)}</td>" for c in r) + "</tr>"
                     for r in rest]
            body.append("</tbody></table>")
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:], base)}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||- |!\[)", lines[i]):
            para.append(lines[i])
            i += 1
        body.append(f"<p>{_inline(' '.join(para), base)}</p>")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


# -- the combined report page ---------------------------------------------------------------------
PAGE_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
color:#1d2125;line-height:1.45;background:#fff}
main{max-width:1200px;margin:0 auto;padding:0 1em 3em}
nav.top{position:sticky;top:0;z-index:10;background:#22303f;padding:.45em 1em;
display:flex;flex-wrap:wrap;gap:.2em .9em;font-size:.9em}
nav.top a{color:#e8eef5;text-decoration:none;white-space:nowrap}nav.top a:hover{text-decoration:underline}
nav.top b{color:#fff;margin-right:.6em}
h1{border-bottom:2px solid #334;padding-bottom:.3em;font-size:1.7em}
h2{margin-top:2em;border-bottom:1px solid #ccd;scroll-margin-top:3em}
h3{scroll-margin-top:3em}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:.88em;width:100%}
th,td{border:1px solid #c9ced6;padding:.3em .5em;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#eef1f5}
td.num{text-align:right;white-space:nowrap}
td.study{min-width:8.5em;overflow-wrap:normal}
.chip{display:inline-block;padding:.1em .55em;border-radius:1em;font-size:.8em;font-weight:700;
white-space:nowrap;color:#fff}
.chip.ok{background:#1b7f3b}.chip.no{background:#b3261e}.chip.inc{background:#a86b00}
img{max-width:100%;height:auto}
img.thumb{width:110px;max-width:none;border:1px solid #dde}
td.thumb{min-width:112px}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:1em}
figure{margin:0;border:1px solid #dde;padding:.4em;background:#fafbfc}
figcaption{font-size:.88em;color:#333;margin-top:.3em}
.meta{color:#555;font-size:.92em}
dl.gloss dt{font-weight:700;margin-top:.5em}dl.gloss dd{margin-left:1.2em}
code{background:#f3f4f6;padding:0 .2em}
details{margin:.6em 0}summary{cursor:pointer;color:#22303f}
@media print{nav.top{display:none}main{max-width:none;padding:0}
.scroll{overflow:visible}section.study{break-before:page}figure,tr{break-inside:avoid}
a{color:inherit;text-decoration:none}.chip{border:1px solid #000;color:#000;background:none}}
"""

CHIPS = {"SUPPORTED": "ok", "NOT SUPPORTED": "no", "INCONCLUSIVE": "inc"}

GLOSSARY = (
    ("SUPPORTED", "The measured effect goes the claimed way and its test passes at the 5% level "
     "after the Holm adjustment (or, for an equivalence claim, the difference is shown to lie "
     "inside the stated margin; for a deterministic check, the check holds)."),
    ("NOT SUPPORTED", "The measurement runs against the claim: the direction is opposite, the "
     "adjusted p is not below 5%, or an equivalence interval lies wholly outside the margin."),
    ("INCONCLUSIVE", "The data cannot decide: an arm missed its training target (a comparison "
     "with an under-trained model is no evidence), the test was impossible, or an equivalence "
     "interval straddles the margin (more seeds would tell)."),
    ("Seed", "One independent repetition with its own random initialization and data order; "
     "every number is a mean over seeds with its 95% interval."),
    ("95% interval", "The Student-t confidence interval of a mean over seeds; for a difference "
     "of two means, Welch's interval (which does not assume equal variances)."),
    ("Welch test", "A two-sample t-test of a difference of means that allows unequal variances "
     "(Welch 1947); df is its (fractional) degrees of freedom."),
    ("Holm adjustment", "Holm's step-down method (Holm 1979) adjusts the p-values of all claims "
     "of one report together, so that the chance of any false SUPPORTED stays below 5%."),
    ("TOST", "Two one-sided tests (Schuirmann 1987): equivalence is shown when the difference "
     "is significantly above -margin and significantly below +margin."),
    ("p", "The probability, were there no effect, of a result at least as extreme as measured."),
    ("g", "Hedges' g: the difference of means in units of the pooled standard deviation, "
     "corrected for small samples."),
    ("pp", "Percentage points: the difference of two percentages (90% vs 88% is 2 pp)."),
    ("Training target", "What an arm must reach before it counts (e.g. train accuracy >= 99%, "
     "or a training loss); a missed target makes the claim INCONCLUSIVE."),
    ("Matched loss", "Arms stopped at the same training loss, so that a difference between them "
     "is not a difference in how far they trained."),
    ("lambda_max", "The largest eigenvalue of the Hessian of the training loss: the sharpness "
     "of the minimum along its steepest direction."),
    ("2/eta", "The stability threshold of gradient descent with step size eta: on a quadratic, "
     "GD diverges along any direction whose curvature exceeds 2/eta."),
    ("NTK", "The neural tangent kernel: the inner products of the network's parameter gradients; "
     "in the wide (lazy) limit training follows kernel regression with it."),
    ("Source's figure", "The number or statement the cited paper reports for the claim, shown "
     "beside ours."),
)


def _esc(text: Any) -> str:
    return html.escape(str(text))


def png_data_uri(path: Path) -> str | None:
    """``data:image/png;base64,...`` of a PNG file (None when it is missing or not a PNG)."""
    path = Path(path)
    if path.suffix.lower() != ".png" or not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def png_thumbnail_uri(path: Path, width: int = 240) -> str | None:
    """A ``width``-pixel-wide PNG thumbnail of a figure as a data URI (None when the file is
    missing or not a PNG): the claims table shows one per claim, so it must not be the
    full-size figure again."""
    import io

    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png" or not path.is_file():
        return None
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, max(1, round(im.height * width / im.width))),
                           Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chip(mark: str) -> str:
    """A colored badge for a verdict mark."""
    return f'<span class="chip {CHIPS.get(mark, "inc")}">{_esc(mark)}</span>'


def anchor(study: str) -> str:
    return "study-" + re.sub(r"[^A-Za-z0-9_-]", "-", study)


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, with RST double backquotes made single."""
    if not doc:
        return ""
    para = doc.strip().split("\n\n")[0]
    return " ".join(para.split()).replace("``", "`")


def study_summary(doc: str | None) -> str:
    """What a study tests, from its module docstring: the first paragraph, and the paragraph
    that states its question (``Question: ...``) when there is one."""
    if not doc:
        return ""
    paras = doc.strip().split("\n\n")
    question = next((p for p in paras[1:] if p.lstrip().startswith("Question:")), "")
    return " ".join(first_paragraph(p) for p in (paras[0], question) if p)


def _table(t: Any) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in t.columns)
    rows = []
    for r in t.rows:
        cells = []
        for c in t.columns:
            v = r.get(c, "") if isinstance(r, dict) else ""
            if isinstance(v, float):
                cells.append(f'<td class="num">{v:.4g}</td>')
            elif isinstance(v, int) and not isinstance(v, bool):
                cells.append(f'<td class="num">{v}</td>')
            else:
                cells.append(f"<td>{_inline(str(v).replace(chr(10), ' '), Path('.'))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h4>{_esc(t.title)}</h4><div class=\"scroll\"><table><thead><tr>{head}</tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def controls_text(v: Any) -> str:
    """Short: which arms met their targets, and what else was controlled."""
    parts = []
    if v.arms:
        missed = v.missed
        parts.append("all targets met" if not missed else
                     "missed: " + "; ".join(a.text() for a in missed))
    if v.controls:
        parts.append(v.controls)
    if not parts and v.reason:
        parts.append(v.reason)
    if not parts and not v.test:
        parts.append("deterministic check")
    return "; ".join(parts)


def what_would_change(v: Any) -> str:
    """One sentence: why this verdict, and what would change it (generic, from the verdict)."""
    from overparam.studies.verdicts import ALPHA

    if v.missed:
        return (f"INCONCLUSIVE because {'; '.join(a.text() for a in v.missed)}: the verdict "
                "can change only once every arm reaches its training target.")
    if v.supported is None:
        if v.equivalence:
            return ("INCONCLUSIVE: the interval of the difference straddles the equivalence "
                    "margin; more seeds would narrow it to one side.")
        return f"INCONCLUSIVE: {v.reason or 'no test was possible'}."
    if not v.test:
        return (f"{v.mark} by a deterministic check: it changes only if the measured quantity "
                "crosses the claim's criterion.")
    p = "no adjusted p" if v.p_adj is None else f"Holm-adjusted p = {v.p_adj:.3g}"
    if v.supported:
        if v.equivalence:
            return (f"SUPPORTED ({p}): it would change if the interval of the difference "
                    "reached the margin.")
        return (f"SUPPORTED ({p}): it would change if the adjusted p rose to {ALPHA:g} or above "
                "or the effect reversed direction.")
    if v.equivalence:
        return (f"NOT SUPPORTED ({p}): the interval of the difference lies outside the margin.")
    if not v.criteria:
        return f"NOT SUPPORTED ({p}): the measured effect goes the opposite way to the claim."
    return (f"NOT SUPPORTED ({p}): the effect goes the claimed way but is not significant "
            f"after the Holm adjustment; it would need adjusted p < {ALPHA:g}.")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def combined_page(out: Path, title: str, reports: Mapping[str, Any], verdicts: Sequence[Any],
                  about: Mapping[str, str], joint: Sequence[tuple[str, Any]] = (),
                  wall_s: float | None = None, env: Mapping[str, str] | None = None,
                  test_script: str = "") -> str:
    """The combined report as one self-contained page: claims table with verdict chips and
    thumbnails, a plain-language paragraph per study (``about``: what it tests), a glossary,
    the settings and wall times, then each study's figures (captioned) and tables.

    ``out/<study>/<figure>.png`` are embedded as data URIs; nothing is fetched. ``test_script``
    (tests only) is inserted as an inline script at the end of the body."""
    out = Path(out)
    figs: dict[str, list[tuple[str, str | None, str]]] = {}
    for name, r in reports.items():
        figs[name] = [(p.stem, png_data_uri(out / name / Path(p).name), r.caption(p.stem))
                      for p in r.figures]
    nav = ['<nav class="top"><b>overparam</b><a href="#claims">Claims</a>'
           '<a href="#studies">What each study tests</a><a href="#glossary">Glossary</a>'
           '<a href="#settings">Settings</a>']
    nav += [f'<a href="#{anchor(n)}">{_esc(n)}</a>' for n in reports]
    nav.append("</nav>")
    body = ["<main>", f"<h1>{_esc(title)}</h1>"]
    marks = [v.mark for v in verdicts]
    body.append('<p class="meta">' + ", ".join(f"{marks.count(m)} {chip(m)}" for m in CHIPS)
                + f" over {len(reports)} studies.</p>")
    # claims
    body.append('<h2 id="claims">Claims</h2><p>One row per claim: what the source paper reports, '
                "what we measured (with its 95% interval), the verdict after adjusting all "
                "claims of this report together (Holm), and whether the compared models reached "
                "their training targets. The thumbnail links to the study's section.</p>")
    rows = []
    # one thumbnail per study, of its first figure that embeds (figs already read every file)
    thumbs = {name: next((png_thumbnail_uri(out / name / Path(p).name)
                          for p, (_, uri, _) in zip(r.figures, figs[name]) if uri), None)
              for name, r in reports.items()}
    for v in verdicts:
        thumb = thumbs.get(v.study)
        cap = next((c for _, uri, c in figs.get(v.study, []) if uri), "")
        link = f'<a href="#{anchor(v.study)}">'
        rows.append(
            f'<tr><td class="study">{link}{_esc(v.study).replace("_", "_<wbr>")}</a></td>'
            f"<td>{_esc(v.claim)}</td>"
            f"<td>{_esc(v.blueprint or '—')}</td><td>{_esc(v.ours or '—')}</td>"
            f"<td>{chip(v.mark)}</td><td>{_esc(controls_text(v))}</td>"
            + (f'<td class="thumb">{link}<img class="thumb" alt="{_esc(cap)}" src="{thumb}">'
               "</a></td>" if thumb else "<td></td>") + "</tr>")
    body.append('<div class="scroll"><table class="claims"><thead><tr><th>study</th><th>claim'
                "</th><th>source's figure</th><th>ours [95% CI]</th><th>verdict</th>"
                "<th>controls</th><th>figure</th></tr></thead><tbody>" + "".join(rows)
                + "</tbody></table></div>")
    # plain language
    body.append('<h2 id="studies">What each study tests</h2>')
    for name in reports:
        mine = [v for v in verdicts if v.study == name]
        body.append(f'<h3><a href="#{anchor(name)}">{_esc(name)}</a></h3>')
        body.append(f"<p>{_inline(about.get(name) or 'No description.', out)}</p>")
        if mine:
            body.append("<ul>" + "".join(f"<li>{_esc(v.claim)}: {_esc(what_would_change(v))}"
                                         "</li>" for v in mine) + "</ul>")
    if joint:
        body.append("<h3>How the mechanisms connect</h3><ul>" + "".join(
            f"<li>{_esc(h)}: {chip(v.mark)} {_esc(v.claim)} ({_esc(v.ours or v.statistic)})"
            "</li>" for h, v in joint) + "</ul>")
    # glossary
    body.append('<h2 id="glossary">Glossary</h2><dl class="gloss">' + "".join(
        f"<dt>{_esc(k)}</dt><dd>{_esc(d)}</dd>" for k, d in GLOSSARY) + "</dl>")
    # settings
    body.append('<h2 id="settings">Settings and wall times</h2><div class="scroll"><table>'
                "<thead><tr><th>study</th><th>settings used</th><th>wall time (as measured)"
                "</th></tr></thead><tbody>" + "".join(
                    f'<tr><td><a href="#{anchor(n)}">{_esc(n)}</a></td>'
                    f"<td>{_esc(r.settings_label())}</td>"
                    f'<td class="num">{duration_text(r.wall_s)}</td></tr>'
                    for n, r in reports.items()) + "</tbody></table></div>")
    if wall_s is not None:
        body.append(f"<p class=\"meta\">Total wall time {duration_text(wall_s)} (studies whose "
                    "runs were already stored only re-analyze).</p>")
    if env:
        body.append("<details><summary>Environment</summary><ul>" + "".join(
            f"<li>{_esc(k)}: {_esc(v)}</li>" for k, v in env.items()) + "</ul></details>")
    # one section per study
    for name, r in reports.items():
        body.append(f'<section class="study" id="{anchor(name)}"><h2>{_esc(name)}</h2>'
                    f'<p class="meta">{_esc(r.settings_label())}; wall time '
                    f"{duration_text(r.wall_s)}</p>")
        if figs[name]:
            body.append('<div class="figs">' + "".join(
                f'<figure><img alt="{_esc(cap)}" src="{uri}"><figcaption>{_esc(cap)}'
                "</figcaption></figure>" if uri else
                f"<figure><figcaption>[figure not found: {_esc(stem)}] {_esc(cap)}"
                "</figcaption></figure>" for stem, uri, cap in figs[name]) + "</div>")
        body += [f"<p>{_inline(n, out)}</p>" for n in r.notes]
        body += [_table(t) for t in r.tables]
        mine = [v for v in verdicts if v.study == name]
        if mine:
            body.append("<details><summary>Statistics of each claim</summary><ul>" + "".join(
                f"<li>{chip(v.mark)} {_esc(v.claim)}: {_esc(v.statistic)}"
                + (f" [{_esc(v.p_text())}]" if v.p_text() else "") + "</li>" for v in mine)
                + "</ul></details>")
        body.append("</section>")
    body.append("</main>")
    script = f"<script>{test_script}</script>" if test_script else ""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{PAGE_STYLE}</style></head><body>"
            + "".join(nav) + "\n" + "\n".join(body) + script + "</body></html>\n")
