"""Every Kedro command of the project imports its settings, and with them the hooks, before it does
anything else: they must not load torch (3 s here), or `kedro --help` and `kedro info` pay for it.
Checked in a fresh interpreter, since this one has torch loaded already."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightning_fabric", "open_clip")


def test_the_settings_and_hooks_load_no_torch():
    probe = f"import sys, lipsum_ft.settings; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
