"""Results in git (results/): saved with their command and revision, and the README holds their tables."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from pipeline.evaluation.results import load, run_markdown, save_results
from tests.factories import ROOT, git_repo


def test_save_copies_the_reports_with_command_revision_and_changed_params(tmp_path):
    ws = tmp_path / "ws"
    (ws / "compare").mkdir(parents=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"data": {"films": None, "limit": 10}}))
    git_repo(ws)
    (ws / "params.yaml").write_text(yaml.safe_dump({"data": {"films": "films.csv", "limit": 10}}))
    (ws / "compare" / "report.md").write_text("# report\n")
    (ws / "compare" / "summary.json").write_text("{}")
    prov = save_results(ws, tmp_path / "results" / "x", "dvc exp run -S data.films=films.csv")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws, capture_output=True, text=True).stdout.strip()
    assert prov["revision"] == head and prov["params_changed"] == {"data.films": "films.csv"}
    assert prov["files"] == ["report.md", "summary.json"] and prov["uncommitted_changes"] is False  # params only
    assert prov["kind"] == "comparison"
    assert (tmp_path / "results" / "x" / "report.md").read_text() == "# report\n"
    assert json.loads((tmp_path / "results" / "x" / "provenance.json").read_text()) == prov


def test_save_refuses_a_workspace_without_reports(tmp_path):
    from pipeline.core.errors import PipelineError

    with pytest.raises(PipelineError, match="no report to save"):
        save_results(tmp_path, tmp_path / "out", "x")


def test_the_films_section_and_headline_are_the_committed_report():
    """Table V in docs/results.md and the README's films headline (results/films, five seeds): every table line of
    the section is a line of the committed report, Table V and its tests are there whole, and every interval
    the reading quotes ("+5.24 [+3.56, +6.88]") is a test of that report; the main pipeline with films is
    results/films-main's run."""
    from pipeline.evaluation.markdown import films_markdown

    folder = ROOT / "results" / "films"
    report, summary = (folder / "report.md").read_text(), load(folder, "summary.json")
    section = _section((ROOT / "docs" / "results.md").read_text(), "## Films: what the poster, the plot and the "
                       "metadata each add")
    labels = {m: s["label"] for m, s in summary["methods"].items()}
    for block in "\n".join(films_markdown(summary["films"], labels)).strip().split("\n\n"):
        if block.startswith("|"):
            assert block in section, f"docs/results.md lacks this table of results/films/summary.json:\n{block}"
    main = ROOT / "results" / "films-main"
    main_table = run_markdown(load(main, "evaluate_metrics.json"), load(main, "train_metrics.json"),
                              "the paper's head + plot + metadata")
    assert main_table in section, f"docs/results.md lacks the table of results/films-main:\n{main_table}"
    names = (ROOT / "results" / "films-names" / "compare_two.md").read_text()  # metadata names: its own run
    films = _held_to(section, report + names, "results/films`", "{diff} [{low}, {high}] |", tables=main_table)
    methods = summary["methods"]  # the reading's untested figures: the product rule on test, validation F1
    for m in ("moviescope", "visio-textual"):
        product = f"{100 * methods[m]['decision_rules']['product']['f1_macro']:.2f}"
        assert product in films and product in section, f"README/docs lack {m}'s product-rule F_m {product}"
        assert f"({100 * methods[m]['val_f1_macro']:.2f})" in section, f"docs lack {m}'s validation F_m"
    assert abs(methods["moviescope"]["val_f1_macro"] - methods["visio-textual"]["val_f1_macro"]) < 0.005  # "half"
    prov = load(folder, "provenance.json")
    assert prov["command"] in section and prov["revision"][:7] in section, "docs lack results/films' command"
    from pipeline.evaluation.methods import METHODS  # a blend (moviescope-separate) is made by the report, not listed

    trained = sorted(m for m in summary["methods"] if not METHODS.get(m).blend)
    assert sorted(prov["params_changed"]["compare.methods"]) == trained, "provenance: other methods"


def test_docs_hold_the_committed_main_run_and_its_calibration():
    """The main pipeline on the shared set (results/main): its table, the README's headline figures and the ECE
    per genre before and after calibration are the committed run's."""
    from pipeline.evaluation.results import calibration_markdown

    main = ROOT / "results" / "main"
    readme = (ROOT / "README.md").read_text()
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    evaluate, train = load(main, "evaluate_metrics.json"), load(main, "train_metrics.json")
    table = run_markdown(evaluate, train, "the paper's head, poster only")
    assert table in docs, f"docs lack the table of results/main:\n{table}"
    table = calibration_markdown(evaluate, load(main, "calibration.json"))
    assert table in docs, f"docs lack the calibration table of results/main:\n{table}"
    for figure in (f"macro F1 {100 * evaluate['f1_macro']:.2f} at the paper's rule",
                   f"{100 * evaluate['product_rule']['f1_macro']:.2f} with the product's decision rule",
                   f"macro ECE {100 * evaluate['calibration']['ece_macro']['none']:.1f} points",
                   f"{100 * evaluate['calibration']['ece_macro']['platt']:.1f} after Platt scaling"):
        assert figure in readme, f"README lacks '{figure}' (results/main)"
    prov = load(main, "provenance.json")
    assert prov["command"] in docs and prov["revision"][:7] in docs and prov["kind"] == "main"


Test = tuple[str, str, float, float, float]


def _summary(seeds: int, tests: list[Test], pairs: list[Test]):
    """A summary as summarise writes it, reduced to what interval_widths reads: (a, b, CI width, film-only width,
    p Holm) per test."""
    def test(a, b, width, film, p_holm):
        return {"a": a, "b": b, "ci_low": -width / 2, "ci_high": width / 2, "p_holm": p_holm,
                "film_only": {"ci_low": 0.0, "ci_high": film}}

    return {"methods": {"ours": {"seeds": seeds}, "image": {"seeds": seeds}},
            "tests": [test(*t) for t in tests], "all_pairs": [test(*t) for t in pairs]}


def test_interval_widths_match_each_pair_across_seed_counts_whichever_way_round():
    from pipeline.evaluation.compare import ALL_PAIRS, QUESTIONS
    from pipeline.evaluation.results import interval_widths, interval_widths_markdown

    three = _summary(3, [("ours", "image", 0.04, 0.02, 0.01), ("ours", "sum", 0.02, 0.01, 0.5)],
                     [("ours", "image", 0.04, 0.02, 0.01), ("sum", "image", 0.01, 0.005, 0.2),
                      ("ours", "sum", 0.02, 0.01, 0.5)])
    # five seeds: narrower, and two pairs now the other way round (the one ahead on test changed)
    five = _summary(5, [("ours", "image", 0.03, 0.02, 0.001), ("sum", "ours", 0.01, 0.01, 0.04)],
                    [("image", "ours", 0.02, 0.02, 0.001), ("sum", "image", 0.01, 0.005, 0.01),
                     ("ours", "sum", 0.01, 0.01, 0.6)])
    rows = interval_widths([three, five])
    by = {(r["seeds"], r["family"]): r for r in rows}
    assert [(r["seeds"], r["family"]) for r in rows] == [(3, QUESTIONS), (3, ALL_PAIRS), (5, QUESTIONS), (5, ALL_PAIRS)]
    assert by[(3, QUESTIONS)] == {"seeds": 3, "family": QUESTIONS, "tests": 2, "significant": 1,
                                  "two_level_width": 3.0, "film_only_width": 1.5, "width_vs_first": None}
    assert by[(5, QUESTIONS)]["significant"] == 2 and by[(5, QUESTIONS)]["width_vs_first"] == 0.625  # (0.75+0.5)/2
    assert by[(5, ALL_PAIRS)]["width_vs_first"] == 0.5 and by[(5, ALL_PAIRS)]["two_level_width"] == 1.0
    table = interval_widths_markdown(rows)
    assert f"| 5 | {ALL_PAIRS} | 3 | 2 | 1.00 | 1.00 | 0.500 |" in table
    assert f"| 3 | {QUESTIONS} | 2 | 1 | 3.00 | 1.50 | - |" in table


#: An interval as the reading quotes it: a difference in points and its 95% interval.
INTERVAL = re.compile(r"([+-]\d+\.\d\d) \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\]")


def _section(text: str, heading: str) -> str:
    """From ``heading`` (a line of its own) to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2:]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", rest, re.M)]
    return rest[:ends[0]] if ends else rest

def _flat(text: str) -> str:
    """``text`` on one line: line breaks differ between a report and the docs, words must not."""
    return " ".join(text.split())


def _held_to(section: str, reports: str, tag: str, interval: str, tables: str = "", at_least: int = 5) -> str:
    """Every table line of ``section`` is a line of ``reports`` (or of ``tables``), and every interval quoted
    there or in the README headline bullet naming ``tag`` is a test of ``reports`` (``interval`` formats it as
    the reports write it); returns that bullet."""
    for line in section.splitlines():
        if line.startswith("|"):
            assert line in reports or line in tables, f"docs/results.md: a table line no committed report has:\n{line}"
    headline = _section((ROOT / "README.md").read_text(), "## Headline results")
    bullets = [b for b in headline.split("\n* ") if tag in b]
    assert bullets, f"README's headline lacks {tag}"
    quoted = INTERVAL.findall(section) + INTERVAL.findall(bullets[0])
    assert len(quoted) >= at_least, "the reading quotes too few intervals to be checked"
    for diff, low, high in quoted:
        form = interval.format(diff=diff, low=low, high=high)
        assert form in reports, f"no committed test has {diff} [{low}, {high}]"
    return bullets[0]



def test_the_comparison_section_and_headline_are_the_committed_reports():
    """The poster-only comparison of docs/results.md and the README's headline about it: every table line is a
    line of a committed report (results/comparison at 0.5, results/comparison-per-genre) or the interval-width
    table of results/comparison-3seeds against results/comparison, and every interval the reading quotes
    ("+0.52 [-0.57, +1.61]") is a test of those reports, so no figure there can drift from git."""
    from pipeline.evaluation.results import interval_widths, interval_widths_markdown

    results = ROOT / "results"
    reports = "\n".join((results / name / "report.md").read_text() for name in ("comparison", "comparison-per-genre"))
    widths = interval_widths_markdown(interval_widths([load(results / "comparison-3seeds", "summary.json"),
                                                       load(results / "comparison", "summary.json")]))
    section = _section((ROOT / "docs" / "results.md").read_text(), "## The comparison")
    assert widths in section, f"docs/results.md lacks the interval-width table:\n{widths}"
    _held_to(section, reports, "results/comparison`", "| {diff} | [{low}, {high}] |", tables=widths)
    for name in ("comparison", "comparison-per-genre", "comparison-3seeds"):
        prov = load(results / name, "provenance.json")
        assert prov["command"] in section and prov["revision"][:7] in section, f"docs lack results/{name}'s command"


def test_save_keeps_a_compare_two_report_with_its_provenance(tmp_path):
    ws = tmp_path / "ws"
    (ws / "compare").mkdir(parents=True)
    (ws / "params.yaml").write_text(yaml.safe_dump({"ocr": {"engine": "rapidocr"}}))
    git_repo(ws)
    (ws / "compare" / "report.md").write_text("# the comparison's report, not compare-two's\n")
    with pytest.raises(Exception, match="no report to save"):
        save_results(ws, tmp_path / "results" / "engines", "poster-genres compare-two a b", kind="compare-two")
    (ws / "compare" / "compare_two.md").write_text("# rapidocr against easyocr\n")
    (ws / "compare" / "compare_two.json").write_text('{"tests": []}')
    prov = save_results(ws, tmp_path / "results" / "engines", "poster-genres compare-two a b", kind="compare-two")
    assert prov["kind"] == "compare-two" and prov["files"] == ["compare_two.json", "compare_two.md"]
    assert sorted(p.name for p in (tmp_path / "results" / "engines").iterdir()) == [
        "compare_two.json", "compare_two.md", "provenance.json"]
    # the saving workspace's stage reports go with it: its OCR pass is the upstream choice compared
    (ws / "features").mkdir()
    (ws / "features" / "ocr_report.json").write_text('{"engine": "easyocr"}')
    prov = save_results(ws, tmp_path / "results" / "engines", "poster-genres compare-two a b", kind="compare-two")
    assert prov["files"] == ["compare_two.json", "compare_two.md", "ocr_report.json"]
    assert load(tmp_path / "results" / "engines", "ocr_report.json") == {"engine": "easyocr"}


def test_docs_hold_the_comparison_runs_ingest_and_ocr_reports():
    """The whole-set OCR quality of each engine (docs/ocr.md) and the posters kept (docs/results.md) are the
    committed stage reports of the runs that read them."""
    folder = ROOT / "results" / "comparison"
    ingest = load(folder, "ingest_report.json")
    # RapidOCR's pass (the comparison's) and EasyOCR's (the OCR-engines comparison's clone), each its engine's
    for name, engine in (("comparison", "rapidocr"), ("ocr-engines", "easyocr")):
        ocr = load(ROOT / "results" / name, "ocr_report.json")
        assert ocr["engine"] == engine and not ocr["failed"], f"results/{name}/ocr_report.json"
        q, t = ocr["quality"], ocr["quality"]["title_recall"]
        sentence = (f"a title word found as a word of the text as read on {100 * t['word_any']:.2f}% of the "
                    f"{t['posters_with_title_words']:,} posters with one, every title word on "
                    f"{100 * t['word_all']:.2f}% (as substrings: {100 * t['substring_any']:.2f}% / "
                    f"{100 * t['substring_all']:.2f}%), {100 * q['no_text']:.2f}% without text, "
                    f"{q['characters_per_poster']:.1f} characters per poster")
        assert sentence in _flat((ROOT / "docs" / "ocr.md").read_text()), f"docs/ocr.md lacks:\n{sentence}"
    kept = (f"{ingest['rows_read']:,} rows -> {ingest['posters_kept']:,} posters kept "
            f"({ingest['skipped']['no_target_genre']} films have")
    assert kept in _flat((ROOT / "docs" / "results.md").read_text()), f"docs/results.md lacks: {kept}"


def test_the_ocr_engines_section_is_the_committed_compare_two():
    """docs/results.md's RapidOCR-against-EasyOCR section: every table line is a line of the committed
    compare-two reports (results/ocr-engines at 0.5, results/ocr-engines-per-genre), every interval its
    reading quotes is one of their tests, and their commands are shown."""
    results = ROOT / "results"
    reports = "\n".join((results / n / "compare_two.md").read_text() for n in ("ocr-engines", "ocr-engines-per-genre"))
    section = _section((ROOT / "docs" / "results.md").read_text(),
                       "## RapidOCR's text against EasyOCR's: does better text change the science?")
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) >= 20, "the section shows too few of the compare-two tables"
    _held_to(section, reports, "results/ocr-engines`", "{diff} [{low}, {high}]", at_least=4)
    for name in ("ocr-engines", "ocr-engines-per-genre"):
        prov = load(results / name, "provenance.json")
        assert prov["kind"] == "compare-two" and prov["params_changed"]["ocr.engine"] == "easyocr"
        assert prov["command"] in section and prov["revision"][:7] in section, f"docs lack results/{name}'s command"


def test_the_product_section_and_headline_are_the_committed_report():
    """docs/results.md's product section holds results/product/report.md's tables whole and its reading, the README
    the sentences generated from the committed summary (every figure a row of the report, every interval the test
    of the pair written beside it), with the provenance's command and revision."""
    from pipeline.evaluation.product_report import product_headline

    folder = ROOT / "results" / "product"
    report, summary = (folder / "report.md").read_text(), load(folder, "summary.json")
    provenance = load(folder, "provenance.json")
    section = _section((ROOT / "docs" / "results.md").read_text(), "## The product: what a catalogue gets")
    for block in report.split("\n\n"):
        if block.startswith("|"):
            assert block in section, f"docs/results.md lacks this table of results/product/report.md:\n{block}"
    readme = _flat((ROOT / "README.md").read_text())
    for line in product_headline(summary):
        assert _flat(line) in readme, f"README lacks: {line}"
        assert _flat(line) in _flat(section), f"docs/results.md's product section lacks: {line}"
    assert provenance["kind"] == "product" and provenance["revision"][:7] in section
    # the early-stopping replay that decides train.patience, in docs/performance.md as the report has it
    replay = next(block for block in report.split("\n\n") if block.startswith("| patience |"))
    assert replay in (ROOT / "docs" / "performance.md").read_text(), "docs/performance.md lacks the replay table"


@pytest.mark.parametrize("folder", ["product", "product-folds"])
def test_the_committed_product_report_renders_from_its_summary(folder):
    """The product report is its summary.json rendered (as the comparison's): its Markdown can be changed and
    checked against the committed report."""
    from pipeline.evaluation.product_report import product_markdown

    folder = ROOT / "results" / folder
    assert product_markdown(load(folder, "summary.json")) == (folder / "report.md").read_text()


def test_the_product_folds_section_and_headline_are_the_committed_report():
    """The product's cross-validation (results/product-folds: every film a test film once, ten folds, two seeds):
    docs/results.md shows its tables (all but the per-fold replays and the references, which the default split's
    section shows), its reading quotes only its tests, and the README states its no-plot line as the report does."""
    from pipeline.evaluation.product_report import product_headline

    folder = ROOT / "results" / "product-folds"
    report, summary = (folder / "report.md").read_text(), load(folder, "summary.json")
    provenance = load(folder, "provenance.json")
    assert summary["folds"] == 10 and provenance["kind"] == "product"
    section = _section((ROOT / "docs" / "results.md").read_text(), "### Every film a test film: ten folds")
    shown = [part for part in re.split(r"\n(?=## )", report) if not part.startswith(
        ("## Early stopping", "## A minimum improvement", "## For reference"))]
    for block in "\n".join(shown).split("\n\n"):
        if block.startswith("|"):
            assert block in section, f"docs/results.md lacks this table of results/product-folds:\n{block}"
    for line in section.splitlines():
        if line.startswith("|"):
            assert line in report, f"docs/results.md: a line results/product-folds does not have:\n{line}"
    tests = {_interval(t) for t in summary["tests"]}
    quoted = [f"{d} [{lo}, {hi}]" for d, lo, hi in INTERVAL.findall(section)]
    assert quoted and all(q in tests for q in quoted), [q for q in quoted if q not in tests]
    no_plot = product_headline(summary)[1]
    assert _flat(no_plot) in _flat((ROOT / "README.md").read_text()), f"README lacks: {no_plot}"
    assert provenance["revision"][:7] in section and "split.folds=10" in section


@pytest.mark.parametrize("folder", ["comparison", "comparison-3seeds", "films"])
def test_a_committed_comparison_report_renders_from_its_summary(folder):
    """The report is its summary rendered: the Markdown code can be changed and checked against every report."""
    from pipeline.evaluation.markdown import markdown

    summary = json.loads((ROOT / "results" / folder / "summary.json").read_text())
    assert markdown(summary) == (ROOT / "results" / folder / "report.md").read_text()


@pytest.mark.parametrize("folder", ["films-names", "ocr-engines", "ocr-engines-per-genre", "ocr-detector-validation",
                                    "metadata-names-validation", "metadata-onehot-validation"])
def test_a_committed_compare_two_report_renders_from_its_result(folder):
    from pipeline.evaluation.markdown import compare_two_markdown

    result = json.loads((ROOT / "results" / folder / "compare_two.json").read_text())
    assert compare_two_markdown(result) == (ROOT / "results" / folder / "compare_two.md").read_text()


#: Each interval the results' reading quotes, bound to the test it must be: (report, family or subset, a, b),
#: the words that must name the pair in the reading just before the interval (since the previous interval)
#: and, where the pair is named after it, just after; and whether the reading calls it significant.
#: Report: comparison (threshold 0.5), comparison-per-genre, films (Table V: subset; a genre test: the
#: genre), a compare-two report (films-names, ocr-engines, ocr-engines-per-genre: a and b are its labels, the
#: group its test's kind and method, "method ours", "gain_a late"; a bare method is kind "method").
BINDINGS = [
    ("comparison", "the paper's questions", "ours", "late", "late fusion ahead of it,", "as paper's head - late fusion",
     False),
    ("comparison", "the paper's questions", "ours", "sum", "baseline `sum` ahead of it,", None, False),
    ("comparison", "the paper's questions", "ours", "late-random-init", "the random-start late fusion is", None, False),
    ("comparison", "the paper's questions", "ours", "ours-L1", "L=4 and L=1 are within", None, False),
    ("comparison-per-genre", "the paper's questions", "ours", "linear", "ahead of the linear probe,", None, True),
    ("comparison-per-genre", "the paper's questions", "ours", "late-random-init", "of the random-start late fusion,",
     None, True),
    ("comparison-per-genre", "all pairs", "late", "ours", "late fusion is ahead of it by", None, False),
    ("comparison", "all pairs", "sum", "ours-no-mcam", "`sum` over the head without MCAM,", None, False),
    ("comparison", "all pairs", "late", "ours-no-mcam", "are not here:", None, False),
    ("comparison", "all pairs", "late", "ours-no-mcam-no-smsam", None, "(p (Holm) 0.98 and 1.00)", False),
    ("comparison", "the paper's questions", "ours", "image", "Text adds over the image alone.** The paper's head is",
     "over image only at 0.5", True),
    ("comparison-per-genre", "the paper's questions", "ours", "image", "per-genre thresholds the paper's head is",
     "over image only", True),
    ("comparison", "all pairs", "image", "text", "Text alone and image alone do not separate (", None, False),
    ("comparison", "all pairs", "late", "late-random-init", "Against the random-start blend it is ahead by", None,
     False),
    ("comparison-per-genre", "all pairs", "late", "late-random-init", "with per-genre thresholds it is ahead by", None,
     True),
    ("films", "Animation", "image", "plot", "(Animation leans that way:", None, False),
    ("films", "all", "image-plot", "plot", "The poster image over the plot, image + plot - plot, is",
     "on all test films", False),
    ("films", "with_plot", "image-plot", "plot", "on all test films and", "on those with a plot", False),
    ("films", "all", "ours-plot", "plot", "with the plot as a further text stream against the plot is", None, False),
    ("films", "with_plot", "ours-plot", "plot", "and, on films with a plot,", None, False),
    ("films", "all", "ours-plot", "ours", "the paper's head with the plot against the paper's head:", "on all films",
     True),
    ("films", "with_plot", "ours-plot", "ours", "on all films and", "on films with a plot", True),
    ("films", "all", "ours-films", "ours", "every modality a film has against the poster only:", None, True),
    ("films", "all", "ours-films", "ours-plot", "every modality against poster + plot is", None, False),
    ("films", "with_plot", "ours-films", "ours-plot", None, "on films with a plot", False),
    ("films-names", "metadata", "drop", "hash", "dropping them moves metadata only by", None, False),
    ("films-names", "moviescope", "drop", "hash", "and the MovieScope ensemble by", None, False),
    ("films", "without_plot", "ours-plot", "ours", "the paper's head with the plot against without:", None, False),
    ("films", "without_plot", "image-plot-dropout", "image",
     "image + plot with a quarter of training plots hidden against image only:", None, False),
    ("films", "all", "image-plot-dropout", "image-plot", "neither overall (", None, False),
    ("films", "without_plot", "image-plot-dropout", "image-plot", "nor without a plot (", None, False),
    # head against loss: the four runs that cross them, and what they explain
    ("films", "all", "ours-films", "late-films", "The paper's head against late fusion is", "with the paper's loss",
     True),
    ("films", "all", "ours-films-wbce", "moviescope", "with the paper's loss and", "with MovieScope's", True),
    ("films", "all", "moviescope", "late-films", "MovieScope's loss against the paper's is",
     "with the late-fusion head", True),
    ("films", "all", "ours-films-wbce", "ours-films", "with the late-fusion head and", "with the paper's head", True),
    ("films", "all", "ours-films", "moviescope", "with the same modalities, by 9.78 (", None, True),
    ("films", "all", "visio-textual", "image-plot", "soft-F1 loss and oversampling add", None, True),
    ("films", "all", "moviescope-separate", "moviescope", "trained ensemble at 0.5 (", None, True),
]
P_HOLM = re.compile(r"p \(Holm\) (\d\.\d+)(?: and (\d\.\d+))?")


def _bound_test(report: str, group: str, a: str, b: str) -> dict:
    """The committed test a binding names."""
    folder = ROOT / "results" / report
    if (folder / "compare_two.json").exists():
        summary = load(folder, "compare_two.json")
        assert summary["labels"] == [a, b], f"results/{report} compares {summary['labels']}, not {a} and {b}"
        kind, method = group.split(" ") if " " in group else ("method", group)
        return next(t for t in summary["tests"] if t["kind"] == kind and t["method"] == method)
    summary = load(folder, "summary.json")
    if report == "films":
        films = summary["films"]
        return next(t for t in films["tests"] + films["genre_tests"]
                    if (t.get("genre") or t["subset"]) == group and (t["a"], t["b"]) == (a, b))
    return next(t for t in summary["tests"] + summary["all_pairs"]
                if (t["family"], t["a"], t["b"]) == (group, a, b))


def _interval(t: dict) -> str:
    return f"{100 * t['diff']:+.2f} [{100 * t['ci_low'] + 0:+.2f}, {100 * t['ci_high'] + 0:+.2f}]"


#: The reading of docs/results.md's RapidOCR-against-EasyOCR section (its two compare-two reports).
OCR_BINDINGS = [
    ("ocr-engines", "method ours", "rapidocr", "easyocr", "significantly for seven: the paper's head by", None, True),
    ("ocr-engines", "method text", "rapidocr", "easyocr", "text only by", None, True),
    ("ocr-engines", "method late", "rapidocr", "easyocr", "Late fusion by", "(p (Holm) 0.129)", False),
    ("ocr-engines", "method late-random-init", "rapidocr", "easyocr", "late fusion with a random blend start (",
     "do not survive Holm", False),
    ("ocr-engines-per-genre", "method ours", "rapidocr", "easyocr", "(the paper's head:", None, True),
    ("ocr-engines-per-genre", "method late", "rapidocr", "easyocr", "late fusion:", None, True),
    ("ocr-engines-per-genre", "method late-random-init", "rapidocr", "easyocr", "the random-start blend (",
     "does not", False),
    ("ocr-engines", "gain_a ours", "rapidocr", "easyocr", "with RapidOCR's text the paper's head gains", None, True),
    ("ocr-engines", "gain_b ours", "rapidocr", "easyocr", "over image only, with EasyOCR's", None, False),
    ("ocr-engines", "gain_diff ours", "rapidocr", "easyocr", "the change,", "is significant", True),
    ("ocr-engines", "gain_diff late", "rapidocr", "easyocr", "For late fusion the change,", "does not survive Holm",
     False),
    ("ocr-engines", "gain_b late", "rapidocr", "easyocr", "only late fusion still gains over image only (", None, True),
    ("ocr-engines", "gain_b text", "rapidocr", "easyocr", "text only falls 7.07 below image only (", None, True),
    ("ocr-engines", "method image", "rapidocr", "easyocr", "Image only, which reads no text**, differs by", None,
     False),
]
#: The README headline's bullets on the comparison, Table V and the OCR engines (the product's bullet is the
#: product report's own sentences, held whole by test_the_product_section_and_headline_are_the_committed_report).
README_BINDINGS = [
    ("comparison", "the paper's questions", "ours", "image", "(the paper's head", "over image only", True),
    ("comparison", "the paper's questions", "ours", "late", "(the largest gaps: late fusion ahead,",
     "as head - late fusion", False),
    ("comparison", "the paper's questions", "ours", "late-random-init", "the head's lead of",
     "over the random-start late fusion", False),
    ("films", "all", "ours-plot", "ours", "plot adds", "macro F1 to the paper's head", True),
    ("films", "all", "image-plot", "plot", "the poster image over the plot,", "does not survive Holm", False),
    ("films", "all", "ours-films", "ours-plot", "metadata adds nothing measurable (", None, False),
    ("films", "without_plot", "ours-plot", "ours",
     "the head trained with plots and the poster-only head are not separated (", None, False),
    ("ocr-engines", "method ours", "rapidocr", "easyocr", "at the paper's rule (the paper's head", None, True),
    ("ocr-engines", "gain_a ours", "rapidocr", "easyocr", "what text adds to the paper's head over image only is",
     "with RapidOCR", True),
    ("ocr-engines", "gain_b ours", "rapidocr", "easyocr", "with RapidOCR against", "with EasyOCR", False),
    ("ocr-engines", "gain_b late", "rapidocr", "easyocr", "late fusion still gains from EasyOCR's text (", None,
     True),
]


def _prose(text: str) -> str:
    """``text`` without its table lines, on one line (a sentence may wrap anywhere)."""
    return " ".join(" ".join(line for line in text.splitlines() if not line.startswith("|")).split())


def _assert_bound(prose: str, bindings: list, where: str) -> None:
    """Each binding's interval is quoted in ``prose`` with its words around it and its significance, every
    p (Holm) quoted is that of the interval just before it, and ``prose`` quotes no interval left unbound."""
    quoted = list(INTERVAL.finditer(prose))
    bound: dict[int, dict] = {}
    for report, group, a, b, before, after, significant in bindings:
        t = _bound_test(report, group, a, b)
        text = _interval(t)
        at = [i for i, m in enumerate(quoted) if m.group(0) == text and i not in bound]
        assert at, f"{where} does not quote {report} {group} {a} - {b}: {text}"
        i = at[0]
        since = prose[quoted[i - 1].end() if i else 0:quoted[i].start()][-250:]
        until = prose[quoted[i].end():quoted[i + 1].start() if i + 1 < len(quoted) else None][:120]
        pair = f"{where}: {text} ({a} - {b}, {group})"
        assert before is None or before in since, f"{pair}: '{before}' is not just before it"
        assert after is None or after in until, f"{pair}: '{after}' is not just after it"
        assert (t["p_holm"] < 0.05) == significant, f"{pair}: the reading calls it " + (
            "significant" if significant else "not significant") + f", p (Holm) {t['p_holm']:.3f}"
        bound[i] = t
    unbound = [m.group(0) for i, m in enumerate(quoted) if i not in bound]
    assert not unbound, f"{where} quotes intervals no binding names: {unbound}"
    # a quoted p (Holm) is that of the pair of the interval just before it (two values: the two intervals before),
    # in the family the reading names there (the pair's tests in every family and threshold mode are candidates;
    # a compare-two test: its own)
    every = [t for name in ("comparison", "comparison-per-genre")
             for t in load(ROOT / "results" / name, "summary.json")["tests"]
             + load(ROOT / "results" / name, "summary.json")["all_pairs"]]
    every += load(ROOT / "results" / "films", "summary.json")["films"]["tests"]
    for p in P_HOLM.finditer(prose):
        values = [v for v in p.groups() if v]
        before = [i for i, m in enumerate(quoted) if m.end() <= p.start()][-len(values):]
        for value, i in zip(values, before):
            pair = {bound[i].get("a"), bound[i].get("b")}
            candidates = [t["p_holm"] for t in every if {t["a"], t["b"]} == pair] or [bound[i]["p_holm"]]
            decimals = len(value.split(".")[1])
            assert any(round(c, decimals) == float(value) for c in candidates), (
                f"{where}: '{p.group(0)}' is not a p (Holm) of the pair of {quoted[i].group(0)}: {candidates}")


def test_every_interval_the_results_reading_quotes_is_bound_to_its_pair_family_and_words():
    """Not only that a quoted interval is some committed test (which swapping two pairs' labels would pass):
    each is the test of the pair and family the words beside it name, its significance is what the reading
    calls it, every p (Holm) quoted is that of the interval just before it, and the reading quotes no interval
    left unbound: docs/results.md's comparison and Table V readings, its OCR-engines reading, and the README
    headline's bullets on them."""
    docs = (ROOT / "docs" / "results.md").read_text()
    headings = ("## The comparison", "## Films: what the poster, the plot and the metadata each add")
    _assert_bound(_prose("\n".join(_section(docs, heading) for heading in headings)), BINDINGS, "docs/results.md")
    ocr = _section(docs, "## RapidOCR's text against EasyOCR's: does better text change the science?")
    _assert_bound(_prose(ocr[ocr.index("**Reading**"):]), OCR_BINDINGS, "docs/results.md (OCR engines)")
    headline = _section((ROOT / "README.md").read_text(), "## Headline results")
    bullets = [b for b in headline.split("\n* ")
               if any(tag in b for tag in ("`results/comparison`", "`results/films`", "`results/ocr-engines`"))]
    assert len(bullets) == 3, "README's headline lacks a bullet on the comparison, Table V or the OCR engines"
    _assert_bound(_prose("\n".join(bullets)), README_BINDINGS, "README")


#: The validation comparisons docs/choices.md quotes where it says what decided a default.
CHOICES_BINDINGS = [
    ("metadata-onehot-validation", "metadata", "names one-hot", "names hashed", "lift the metadata-only model by",
     None, True),
    ("metadata-onehot-validation", "moviescope", "names one-hot", "names hashed", "move the MovieScope ensemble by",
     None, False),
    ("metadata-names-validation", "metadata", "names hashed", "names dropped", "`results/metadata-names-validation`:",
     None, False),
    ("metadata-names-validation", "moviescope", "names hashed", "names dropped", None, None, False),
]


def test_the_defaults_decided_on_validation_quote_their_validation_tests():
    """docs/choices.md's table of what decided each default: every interval it quotes is the validation test the
    words beside it name (the table's rows are read as prose, since the table is the text here)."""
    section = _section((ROOT / "docs" / "choices.md").read_text(),
                       "## What decided each default (and which read a test figure)")
    for name in {b[0] for b in CHOICES_BINDINGS}:
        assert load(ROOT / "results" / name, "compare_two.json")["split"] == "val", f"results/{name} is not validation"
    _assert_bound(_flat(section), CHOICES_BINDINGS, "docs/choices.md")


def test_the_counts_the_readings_state_are_the_reports_counts():
    """"None of its 12", "seven of the nine", "eight of the nine": each count a reading states is counted again from
    the committed report it cites (a re-made report with other counts fails here until the words follow)."""
    from pipeline.evaluation.methods import reads_films

    comparison = json.loads((ROOT / "results" / "comparison" / "summary.json").read_text())
    # the paper's head against every method that reads both image and text (its ablations included)
    both = [t for t in comparison["tests"] if t["a"] == "ours" and t["b"] not in ("image", "text", "naive")
            and not reads_films(t["b"])]
    significant = sum(t["p_holm"] < 0.05 for t in both)
    words = {0: "none", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
             9: "nine", 10: "ten"}
    results = (ROOT / "docs" / "results.md").read_text()
    assert f"{words[significant]} of its {len(both)} differences to them survives" in results
    readme = (ROOT / "README.md").read_text()
    for folder, text, where in (("ocr-engines", "significantly for {k}", results),
                                ("ocr-engines", "{k} of the {n} methods that read text score significantly higher",
                                 readme),
                                ("ocr-engines-per-genre", "{k} of the {n} survive", results)):
        report = json.loads((ROOT / "results" / folder / "compare_two.json").read_text())
        text_methods = [t for t in report["tests"] if t["kind"] == "method" and t["method"] != report["reference"]]
        k = sum(t["p_holm"] < 0.05 and t["diff"] > 0 for t in text_methods)
        stated = text.format(k=words[k], n=words[len(text_methods)])
        assert _flat(stated) in _flat(where), (folder, stated)
    assert f"for each of the {words[len(text_methods)]} methods that read text" in _flat(results)
