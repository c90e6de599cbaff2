"""Variant names are formed and read back by one module: what posthoc writes, evaluate reads."""

from __future__ import annotations

import math

import pytest

from lipsum_ft.posthoc.variant_names import describe, tpgm_name, variant_names, wise_name, without_alpha


@pytest.mark.parametrize("method", ["lipsum", "ft", "lpft"])
@pytest.mark.parametrize("alpha", [0.0, 0.35, 1.0])
def test_a_wise_name_reads_back_its_method_and_alpha(method, alpha):
    name = wise_name(method, alpha)
    assert describe(name) == {"kind": "wise", "method": method, "alpha": alpha}
    assert without_alpha(name) == f"wise-{method}" == wise_name(method, None)


def test_names_other_than_wise_keep_their_name_without_alpha():
    for name in ("zeroshot", "lipsum", tpgm_name("carft")):
        assert without_alpha(name) == name
    tpgm = describe(tpgm_name("carft"))
    assert tpgm["kind"] == "tpgm" and tpgm["method"] == "carft" and math.isnan(tpgm["alpha"])
    assert describe("kd") == {"kind": "finetuned", "method": "kd", "alpha": 1.0}


def test_every_variant_of_a_run_is_named_once_in_the_summary_order():
    names = variant_names(["ft", "lipsum"], [0.25, 0.5])
    assert names == [
        "zeroshot",
        "ft",
        "lipsum",
        "wise-ft-0.25",
        "wise-ft-0.50",
        "wise-lipsum-0.25",
        "wise-lipsum-0.50",
        "tpgm-ft",
        "tpgm-lipsum",
    ]
