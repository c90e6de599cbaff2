"""The fine-tuning recipe a method gets from ``params:finetune``: its own lr where one is set."""

from __future__ import annotations

from pathlib import Path

import yaml

from lipsum_ft.params.finetune import FinetuneParams
from lipsum_ft.params.shared import parse
from lipsum_ft.training.runs import train_config

REPO = Path(__file__).resolve().parents[2]


def test_a_method_with_its_own_lr_gets_it_and_the_others_the_shared_one():
    finetune = yaml.safe_load((REPO / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    finetune = {
        **finetune,
        "reference_domain": "photo",
        "loader": {},
        "lr": 1e-4,
        "lr_by_method": {"lp": 1e-2},
    }
    params = parse(FinetuneParams, finetune)
    assert train_config(params, "lp").lr == 1e-2
    assert train_config(params, "ft").lr == train_config(params, "lipsum").lr == 1e-4
