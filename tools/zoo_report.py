"""Write the zoo's two results into results/zoo/: Figure 6 (figure6.svg) and Table 6 with the
verdicts (README.md's generated part), both from the stored run records.

    python tools/zoo_report.py            # rewrite them
    python tools/zoo_report.py --check    # exit 1 if they are not what the records give

tests/test_zoo.py runs the check, so the stored page cannot drift from the records.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "results" / "zoo"
BEGIN, END = "<!-- zoo_report: begin -->", "<!-- zoo_report: end -->"


def report(store: Path = ROOT / "results") -> str:
    """The generated Markdown: Table 6 beside the paper's, then the verdicts."""
    from resnet_lab.book.reproduction import table6
    from resnet_lab.results import zoo

    runs = zoo.zoo_runs(store)
    if not runs:
        return "No zoo run has finished yet.\n"
    study = zoo.zoo_study(store)
    spread = zoo.borrowed_spread(store)
    depths = sorted({d for _, d in runs})
    table = table6(study=runs, depths=depths).to_markdown()
    parts = [table, ""]
    for which, noun in (("train", "training"), ("test", "test")):
        sd = spread[which]
        rows = zoo.verdict_rows(zoo.zoo_claims(study, sd, which))
        parts.append(
            f"Verdicts on final {noun} error (one seed each; standard error of a difference "
            f"= sqrt(2) x {sd:.2f} points, the laptop study's seed-to-seed spread):"
            if sd is not None
            else f"Verdicts on final {noun} error (one seed each, no error bar):"
        )
        parts.append("")
        parts.append("| claim | difference (points) | standard error (points) | verdict |")
        parts.append("| --- | --- | --- | --- |")
        parts += [
            f"| {r['claim']} | {r['difference (points)']} | {r['standard error (points)']} "
            f"| {r['verdict']} |"
            for r in rows
        ]
        parts.append("")
    return "\n".join(parts)


def figure_svg(store: Path = ROOT / "results") -> bytes | None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "zoo"  # stable ids: the same records, the same file
    import matplotlib.pyplot as plt

    from resnet_lab.book.zoo import zoo_figure
    from resnet_lab.results import zoo

    runs = zoo.zoo_runs(store)
    if not runs:
        return None
    fig = zoo_figure(runs)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def _readme_with(text: str, readme: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{text}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    readme_path = ZOO / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    if BEGIN not in readme or END not in readme:
        print(f"{readme_path} has no {BEGIN} ... {END} block to fill", file=sys.stderr)
        return 2
    new_readme = _readme_with(report(), readme)
    if args.check:
        if new_readme != readme:
            print(
                f"{readme_path} is not what the zoo's records give: run python tools/zoo_report.py",
                file=sys.stderr,
            )
            return 1
        return 0
    readme_path.write_text(new_readme, encoding="utf-8")
    svg = figure_svg()
    if svg is not None:
        (ZOO / "figure6.svg").write_bytes(svg)
    print(f"wrote {readme_path}" + (" and figure6.svg" if svg is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
