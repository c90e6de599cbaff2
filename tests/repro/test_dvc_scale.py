"""DVC beyond one checkout, on a temporary git + DVC repo with conf/test-sized settings in conf/base:
share through the committed remote (push, clone, pull: nothing to recompute), experiments (-S with
--temp, --queue with two workers), and a DomainNet pipeline versioned apart from the benchmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lipsum_ft.clip import backbone  # noqa: F401  (registers the packaged model configs with open_clip)
from tests.pipelines.test_domainnet_env import tiny_domainnet_settings
from tests.repro.dvc_helpers import BIN, DVC, GIT, copy_project, sh, stages_run
from tests.scratch import scratch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(reproduced, request, tmp_path_factory) -> Iterator[Path]:
    """The project as a fresh clone would have it (committed .dvc/config and its default remote),
    after one `dvc repro` of the embedded benchmark, its results committed."""
    with scratch(request, tmp_path_factory, "share") as folder:
        root = copy_project(reproduced[0], folder / "lipsum-ft")
        sh(GIT + ["add", "-A"], root)
        sh(GIT + ["commit", "-qm", "results"], root)
        yield root


def test_push_then_clone_and_pull_gives_the_same_results_with_nothing_to_recompute(repo):
    remote = repo.parent / "lipsum-ft-dvc-remote"  # the committed default: a folder beside the checkout
    sh(DVC + ["push", "dvc.yaml"], repo)  # as `make push`: the benchmark's stages
    assert any(remote.rglob("*")), "dvc push wrote nothing to the default remote"
    clone = repo.parent / "colleague"
    sh(["git", "clone", "-q", str(repo), str(clone)], repo.parent)
    (clone / ".venv").symlink_to(BIN.parent)
    assert not (clone / "data/06_models/finetuned").exists()
    started = time.perf_counter()
    sh(DVC + ["pull"], clone)  # bare: envs/domainnet is a DVC project of its own, none of its outputs wanted
    print(f"dvc pull: {time.perf_counter() - started:.1f} s")
    status = json.loads(sh(DVC + ["status", "--json"], clone).strip().splitlines()[-1])
    assert status == {}
    assert stages_run(sh(DVC + ["repro"], clone)) == set()
    assert (clone / "reports/metrics.json").read_bytes() == (repo / "reports/metrics.json").read_bytes()
    head = "data/06_models/zeroshot_head.safetensors"  # a cached output, restored from the remote
    assert (clone / head).read_bytes() == (repo / head).read_bytes()


def exp_rows(repo: Path) -> list[dict]:
    shown = json.loads(sh(DVC + ["exp", "show", "--json"], repo))
    rows = []
    for entry in shown:
        for exp in [entry, *[e for r in entry.get("experiments") or [] for e in r.get("revs", [])]]:
            data = exp.get("data") or {}
            params = data.get("params", {}).get("conf/base/parameters_finetune.yml", {}).get("data", {})
            metrics = data.get("metrics", {}).get("reports/headline.json", {}).get("data", {})
            rows.append({"name": exp.get("name") or exp.get("rev"), "params": params, "metrics": metrics})
    return rows


def test_experiments_set_a_param_in_a_temp_copy_and_two_queued_runs_finish(repo):
    lam = "conf/base/parameters_finetune.yml:finetune.lipsum.lambda"
    # target `evaluate`: the default chain (the guidance study is not what this checks)
    sh(DVC + ["exp", "run", "evaluate", "--temp", "-n", "lambda2", "-S", f"{lam}=2.0"], repo)
    for value in (0.25, 4.0):  # queued runs stop at `finetune`: that two workers finish is what counts here
        sh(DVC + ["exp", "run", "finetune", "--queue", "-n", f"lambda{value}", "-S", f"{lam}={value}"], repo)
    sh(DVC + ["queue", "start", "-j", "2"], repo)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = sh(DVC + ["queue", "status"], repo)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert "Failed" not in status and status.count("Success") == 2, status
    sh(DVC + ["queue", "stop"], repo)  # the workers would otherwise idle on after the test
    rows = {r["name"]: r for r in exp_rows(repo)}
    baseline = rows["workspace"]
    assert baseline["params"]["finetune"]["lipsum"]["lambda"] == 1.0
    for name, value in (("lambda2", 2.0), ("lambda0.25", 0.25), ("lambda4.0", 4.0)):
        assert name in rows, f"experiment {name} missing from dvc exp show: {sorted(rows)}"
        assert rows[name]["params"]["finetune"]["lipsum"]["lambda"] == value
    exp = rows["lambda2"]
    # lambda weighs Lipsum-FT's regulariser only: FT's numbers stay, Lipsum-FT's move
    ft, lipsum = baseline["metrics"]["ft"], baseline["metrics"]["lipsum"]  # the headline of each
    assert ft and lipsum
    assert exp["metrics"]["ft"] == ft
    assert exp["metrics"]["lipsum"] != lipsum
    # the workspace was left as it was: a temp/queued experiment changes only its own copy
    assert "lambda: 1.0" in (repo / "conf/base/parameters_finetune.yml").read_text()


def test_domainnet_pipeline_is_a_dvc_project_of_its_own_that_the_benchmark_repro_ignores(repo, tmp_path):
    tiny = tiny_domainnet_settings(tmp_path, workers=0, checkpoint_every=2)
    root = Path(tiny["data"].pop("layout")["root"])  # the dataset root comes from envs/domainnet/dataset.yaml
    for group, values in tiny.items():
        path = repo / f"conf/domainnet/parameters_{group}.yml"
        path.write_text(OmegaConf.to_yaml(OmegaConf.merge(OmegaConf.load(path), {group: values})))
    env = repo / "envs/domainnet"
    (env / "dataset.yaml").write_text(f"dataset_root: {root}\n")
    benchmark = (repo / "reports/metrics.json").read_bytes()

    assert stages_run(sh(DVC + ["repro"], repo)) == set()  # plain repro: the benchmark only, up to date
    ran = sh(DVC + ["repro"], env)  # as the README: cd envs/domainnet && dvc repro
    assert stages_run(ran) == {"data", "pretrain", "zeroshot", "finetune", "posthoc", "evaluate"}
    metrics = json.loads((env / "reports/metrics.json").read_text())
    assert "lipsum" in json.dumps(metrics)
    assert (repo / "reports/metrics.json").read_bytes() == benchmark  # the benchmark's files untouched
    assert not (repo / "data/domainnet").exists() and not (repo / "reports/domainnet").exists()
    assert (env / "dvclive/finetune/metrics.json").is_file()  # its live curves stay inside it too
    lock = (env / "dvc.lock").read_text()
    assert str(root) in lock and "data/06_models/checkpoints" in lock  # external dep, checkpoints out
    assert stages_run(sh(DVC + ["repro"], env)) == set()
    (repo / "src/lipsum_ft/__pycache__").mkdir(exist_ok=True)  # bytecode is no code change (.dvcignore)
    (repo / "src/lipsum_ft/__pycache__/stray.cpython-311.pyc").write_bytes(b"\0")
    assert json.loads(sh(DVC + ["status", "--json"], env).strip().splitlines()[-1]) == {}
    (root / "real_train.txt").write_text((root / "real_train.txt").read_text() + "\n")  # the dataset changed
    status = json.loads(sh(DVC + ["status", "--json"], env).strip().splitlines()[-1])
    assert "data" in status
