"""Which process writes in a launched multi-node job, and the cross-file checks that replace ${globals:}."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset

from lipsum_ft.hooks import RankZeroWritesHook
from lipsum_ft.io.files import AtomicCSVDataset
from lipsum_ft.params.registry import validate_parameters
from lipsum_ft.params.shared import ParameterError
from lipsum_ft.training.cluster import launched_rank, launched_world_size


def test_rank_and_world_size_come_from_torchrun_then_slurm_then_default():
    assert (launched_rank({}), launched_world_size({})) == (0, 1)
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}
    assert (launched_rank(slurm), launched_world_size(slurm)) == (3, 8)
    both = {**slurm, "RANK": "5", "WORLD_SIZE": "6"}  # torchrun inside a SLURM allocation wins
    assert (launched_rank(both), launched_world_size(both)) == (5, 6)


def catalog_with_a_file(tmp_path):
    catalog = DataCatalog(
        datasets={"log": AtomicCSVDataset(filepath=str(tmp_path / "log.csv")), "scratch": MemoryDataset()}
    )
    return catalog


@pytest.mark.parametrize("rank", ["0", "2"])
def test_only_global_rank_zero_writes_files_and_other_ranks_still_read_back(tmp_path, monkeypatch, rank):
    monkeypatch.setenv("RANK", rank)
    catalog = catalog_with_a_file(tmp_path)
    RankZeroWritesHook().after_catalog_created(catalog)
    frame = pd.DataFrame({"step": [1, 2, 3], "loss": [2.5, 1.25, 0.75]})
    catalog.save("log", frame)
    catalog.save("scratch", 7)
    assert (tmp_path / "log.csv").is_file() == (rank == "0")
    assert catalog.exists("log")  # a later node on this rank finds its input
    pd.testing.assert_frame_equal(catalog.load("log"), frame)
    assert catalog.load("scratch") == 7


def test_a_non_zero_rank_reads_an_existing_file(tmp_path, monkeypatch):
    pd.DataFrame({"a": [4, 9]}).to_csv(tmp_path / "log.csv", index=False)
    monkeypatch.setenv("RANK", "1")
    catalog = catalog_with_a_file(tmp_path)
    RankZeroWritesHook().after_catalog_created(catalog)
    assert catalog.load("log")["a"].tolist() == [4, 9]


def test_reference_domains_that_differ_between_files_are_named():
    from kedro.config import OmegaConfigLoader

    from tests.conftest import REPO

    base = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="base")["parameters"]
    groups = {name: dict(base[name]) for name in ("finetune", "posthoc", "evaluate")}
    assert validate_parameters(groups)["evaluate"].reference_domain == "photo"
    groups["evaluate"]["reference_domain"] = "sketch"
    with pytest.raises(
        ParameterError, match=r"finetune.reference_domain='photo'.*evaluate.reference_domain='sketch'"
    ):
        validate_parameters(groups)
