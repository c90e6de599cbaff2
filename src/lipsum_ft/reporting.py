"""Plain-text renderings of results for people: Markdown tables."""

from __future__ import annotations

from typing import Mapping


def domain_table(title: str, results: Mapping[str, Mapping[str, float]], reference: str | None = None) -> str:
    """A Markdown table, one row per domain (accuracy/ECE in %, NLL raw), plus the mean over domains."""
    lines = [f"### {title}", "", "| domain | acc % | NLL | ECE % | n |", "|---|---:|---:|---:|---:|"]
    for domain, m in results.items():
        mark = " (reference)" if domain == reference else ""
        lines.append(f"| {domain}{mark} | {100 * m['acc']:.1f} | {m['nll']:.3f} | {100 * m['ece']:.1f} | {int(m['n'])} |")
    if results:
        mean = {k: sum(m[k] for m in results.values()) / len(results) for k in ("acc", "nll", "ece")}
        lines.append(f"| **mean** | {100 * mean['acc']:.1f} | {mean['nll']:.3f} | {100 * mean['ece']:.1f} | |")
    return "\n".join(lines) + "\n"
