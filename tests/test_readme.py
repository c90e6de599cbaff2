"""`make readme`: result sections are replaced between their markers, and a missing marker is named."""

from __future__ import annotations

import pytest

from lipsum_ft.readme import inject, main, markers


def test_each_section_is_replaced_between_its_own_markers(tmp_path):
    (tmp_path / "reports" / "guidance").mkdir(parents=True)
    (tmp_path / "reports" / "ablation").mkdir(parents=True)
    (tmp_path / "reports" / "seeds").mkdir(parents=True)
    (tmp_path / "reports" / "seeds" / "summary.md").write_text("| five seeds |\n")
    (tmp_path / "reports" / "summary.md").write_text("| chain |\n")
    (tmp_path / "reports" / "guidance" / "summary.md").write_text("| study |\n")
    (tmp_path / "reports" / "ablation" / "findings.md").write_text("**0. findings**\n")
    sections = "\n".join(
        f"{begin}\nold {name}\n{end}"
        for name in ("guidance", "findings", "results", "seeds")
        for begin, end in [markers(name)]
    )
    (tmp_path / "README.md").write_text(f"# title\n{sections}\ntail\n")
    main(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "old" not in text and text.endswith("tail\n")
    assert text.index("| study |") < text.index("**0. findings**") < text.index("| chain |")
    assert text.index("| chain |") < text.index("| five seeds |")


def test_a_missing_marker_is_named():
    with pytest.raises(ValueError, match="guidance:begin"):
        inject("# no markers\n", "| t |", "guidance")
