"""dvc.yaml runs Kedro's default chain: one stage per pipeline of ``CHAIN``, in its order, on conf/base.

The session's ``chain`` fixture (tests/conftest.py) takes ``kedro run``'s outputs from one `dvc repro`;
that holds only while the stages are the chain's pipelines, each run as `kedro run` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lipsum_ft.pipeline_registry import CHAIN, STUDIES

REPO = Path(__file__).resolve().parents[2]


def test_the_stages_run_the_chain_in_order_then_the_studies_each_once_on_conf_base():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = spec["stages"]
    pipelines = [re.search(r"--pipeline=(\w+)", s["cmd"]).group(1) for s in stages.values()]
    assert pipelines == [*CHAIN, *STUDIES]
    assert list(stages) == pipelines  # each stage is named after its pipeline
    assert all(s["cmd"] == f"${{kedro}} --pipeline={name}" for name, s in stages.items())
    (kedro,) = [v["kedro"] for v in spec["vars"] if "kedro" in v]
    assert kedro.endswith("python -m kedro run --env=base")
