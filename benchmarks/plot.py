"""Plot the JSON written by ``pg_to_pg.py --json`` into a PNG for docs/performance.md.

Usage::

    python benchmarks/plot.py results.json [--scaling scale.json] [--out docs/img/pg_to_pg.png]

``--scaling`` takes the scaling part from another run's JSON (``pg_to_pg.py --scale``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LABELS = {
    "raw_copy": "raw\nCOPY pipe",
    "etl": "etl-express",
    "etl_anon": "etl-express\n+ anonymizers",
    "dlt": "dlt\n(pyarrow)",
    "etl_standin": "etl-express\n+ stand-in\nanonymizers",
    "replay": "replay",
    "etl@before": "before:\nplain",
    "etl_anon@before": "before:\nanon.",
    "replay@before": "before:\nreplay",
}
COLORS = {
    "raw_copy": "#7f7f7f",
    "etl": "#1f77b4",
    "etl_anon": "#2ca02c",
    "etl_standin": "#98df8a",
    "dlt": "#d62728",
    "replay": "#17becf",
    "etl@before": "#aec7e8",
    "etl_anon@before": "#98df8a",
    "replay@before": "#9edae5",
}


def plot(report: dict[str, Any], out: Path) -> None:
    results = report["results"]
    scaling = report.get("scaling")
    fig, axes = plt.subplots(
        1, 2 if scaling else 1, figsize=(12 if scaling else 7, 4.6), squeeze=False
    )
    ax = axes[0][0]
    names = [r["case"] for r in results]
    rates = [r["rows_per_s"] / 1000 for r in results]
    bars = ax.bar(
        [LABELS.get(n, n) for n in names], rates, color=[COLORS.get(n, "#9467bd") for n in names]
    )
    for bar, r in zip(bars, results):
        ax.annotate(
            f"{r['ratio_to_raw_copy']:.2f}x raw\n{r['seconds_median']:.1f} s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.tick_params(axis="x", labelsize=7 if len(names) > 5 else 9)
    ax.set_ylabel("thousand rows / s (median)")
    ax.set_title(
        f"PostgreSQL → PostgreSQL, {report['rows']:,} rows ({report['source_mb']:.0f} MB)",
        fontsize=10,
    )
    ax.set_ylim(0, max(rates) * 1.25)
    if scaling:
        ax2 = axes[0][1]
        rows = [s["rows"] / 1e6 for s in scaling["sizes"]]
        ax2.plot(
            rows,
            [s["seconds_median"] for s in scaling["sizes"]],
            "o-",
            color="#1f77b4",
            label="time",
        )
        ax2.set_ylabel("seconds (median)", color="#1f77b4")
        ax2.set_xlabel("million rows")
        ax2.set_xlim(0, max(rows) * 1.1)
        mem = ax2.twinx()
        mem.plot(
            rows,
            [s["peak_rss_mb_median"] for s in scaling["sizes"]],
            "s--",
            color="#ff7f0e",
            label="peak memory",
        )
        mem.set_ylabel("peak RSS of the process, MB", color="#ff7f0e")
        mem.set_ylim(0, max(s["peak_rss_mb_median"] for s in scaling["sizes"]) * 1.3)
        doubling = scaling.get("time_ratio_per_doubling") or [scaling["time_ratio_2x"]]
        memory = scaling.get("memory_ratio_largest", scaling.get("memory_ratio_2x"))
        ax2.set_title(
            f"{LABELS.get(scaling['case'], scaling['case']).replace(chr(10), ' ')}: "
            f"2x rows → {max(doubling):.2f}x time at most, {memory:.2f}x memory",
            fontsize=10,
        )
        ax2.set_ylim(0, max(s["seconds_median"] for s in scaling["sizes"]) * 1.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--scaling", type=Path, help="take the scaling panel from this JSON")
    parser.add_argument("--out", type=Path, default=Path("docs/img/pg_to_pg.png"))
    args = parser.parse_args()
    report = json.loads(args.results.read_text())
    if args.scaling:
        report["scaling"] = json.loads(args.scaling.read_text())["scaling"]
    plot(report, args.out)


if __name__ == "__main__":
    main()
