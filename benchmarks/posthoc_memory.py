"""Host memory of a WiSE grid: the ``posthoc`` node writing it, and evaluation reading it back.

Two phases, each in a fresh process so that its peak resident memory (``ru_maxrss``) is its own:

- ``write``: a zero-shot model and ``--methods`` fine-tuned ones (random init, perturbed), their
  classifier states, then the grid over ``--alphas`` alphas as the ``posthoc`` node makes it
  (``posthoc.wise_grid``), saved through the catalog's ``TensorCollectionDataset``;
- ``read``: the grid loaded through the same dataset and into one scratch classifier, state by state,
  as the ``evaluate`` pipeline does (``{**wise_models, **tpgm_models}``, then
  ``evaluation.variants.classifiers``).

Each phase reports its peak before the grid (the models it needs) and after, in MiB; the difference is
what the grid costs. ``--materialize`` is the baseline: every state held at once, as the node returned
them and the dataset loaded them before they were deferred (a dict of all merged states; a dict of
all loaded states). The JSON names the library it measured (``lipsum_ft.__file__``).

    .venv/bin/python benchmarks/posthoc_memory.py --output /tmp/posthoc_memory.json   # ViT-B/16, 2 x 11
    .venv/bin/python benchmarks/posthoc_memory.py --materialize --output /tmp/baseline.json
    .venv/bin/python benchmarks/posthoc_memory.py --model TinyCLIP-ViT-P8-32 --alphas 3 --output /tmp/m.json
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def peak_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def zero_shot(model_name: str, classes: int):
    """The zero-shot model (random init, seed 0) and a unit-norm head of ``classes`` columns."""
    from lipsum_ft.clip.backbone import new_model

    model, spec = new_model(model_name, seed=0)
    width = spec.model_cfg["embed_dim"]
    weight = F.normalize(torch.randn(width, classes, generator=torch.Generator().manual_seed(0)), dim=0)
    return model, spec, {"weight": weight, "logit_scale": torch.tensor(100.0)}


def write_phase(args: argparse.Namespace) -> dict[str, Any]:
    from lipsum_ft.clip.zeroshot import classifier_for
    from lipsum_ft.io.models import TensorCollectionDataset
    from lipsum_ft.posthoc.wise_grid import wise_grid

    model, _, head = zero_shot(args.model, args.classes)
    tuned_models = []
    for index in range(args.methods):
        tuned = copy.deepcopy(model)
        generator = torch.Generator().manual_seed(index + 1)
        with torch.no_grad():
            for parameter in tuned.visual.parameters():
                parameter.add_(1e-3 * torch.randn(parameter.shape, generator=generator))
        tuned_models.append(tuned)
    before = peak_mib()
    started = time.perf_counter()
    zero = classifier_for(model, head).state_dict()  # as the node's _states: views of the models
    states = {f"method{i}": classifier_for(m, head).state_dict() for i, m in enumerate(tuned_models)}
    alphas = [round(i / (args.alphas - 1), 4) for i in range(args.alphas)] if args.alphas > 1 else [0.5]
    grid = wise_grid(zero, states, alphas)
    TensorCollectionDataset(filepath=str(args.folder)).save(dict(grid) if args.materialize else grid)
    return {"before_mib": before, "peak_mib": peak_mib(), "seconds": time.perf_counter() - started}


def read_phase(args: argparse.Namespace) -> dict[str, Any]:
    from lipsum_ft.evaluation.variants import classifiers
    from lipsum_ft.io.models import TensorCollectionDataset

    model, _, head = zero_shot(args.model, args.classes)
    before = peak_mib()
    started = time.perf_counter()
    states = {**TensorCollectionDataset(filepath=str(args.folder)).load()}  # as the evaluate node merges
    if args.materialize:
        states = {name: dict(state) for name, state in states.items()}
    checksum = 0.0
    for _, classifier in classifiers(model, head, list(states.items())):
        checksum += float(classifier.head.detach().sum())  # the state is in the scratch classifier
    return {
        "before_mib": before,
        "peak_mib": peak_mib(),
        "seconds": time.perf_counter() - started,
        "states": len(states),
        "checksum": checksum,
    }


def run_phase(phase: str, folder: Path, argv: list[str]) -> dict[str, Any]:
    """One phase in a fresh interpreter, given the run's own arguments: its JSON line on stdout."""
    command = [sys.executable, __file__, *argv, "--phase", phase, "--folder", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{phase} phase failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["grid_mib"] = figures["peak_mib"] - figures["before_mib"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16", help="open_clip model, random init")
    parser.add_argument("--methods", type=int, default=2, help="fine-tuned methods in the grid")
    parser.add_argument("--alphas", type=int, default=11, help="alphas from 0 to 1 (conf/base: eleven)")
    parser.add_argument("--classes", type=int, default=345, help="columns of the head (DomainNet: 345)")
    parser.add_argument(
        "--materialize", action="store_true", help="the baseline: every state of the grid in memory at once"
    )
    parser.add_argument("--output", type=Path, help="the JSON (printed too)")
    parser.add_argument("--phase", choices=("write", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # memory is measured, not speed: one thread keeps the allocator's pools small
    if args.phase:
        print(json.dumps((write_phase if args.phase == "write" else read_phase)(args)))
        return 0

    import lipsum_ft

    with tempfile.TemporaryDirectory(prefix="posthoc-memory-") as scratch:
        folder = Path(scratch) / "wise"
        write = run_phase("write", folder, argv)
        sizes = [f.stat().st_size for f in folder.glob("*.safetensors")]
        read = run_phase("read", folder, argv)
    report = {
        "library": str(Path(lipsum_ft.__file__).parent),
        "model": args.model,
        "methods": args.methods,
        "alphas": args.alphas,
        "materialize": args.materialize,
        "states": len(sizes),
        "state_mib": sum(sizes) / len(sizes) / 2**20,
        "write": write,
        "read": read,
    }
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
