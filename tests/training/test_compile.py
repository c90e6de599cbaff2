"""``finetune.compile``: the loop with torch.compile'd image towers computes what the eager loop does.

On the CPU at tiny size (inductor's C++ backend); on a GPU ``benchmarks/gpu_step.py --compile`` and
``benchmarks/gpu_chain.py`` measure the speed and compare the loss curves in bf16.
"""

from __future__ import annotations

import pytest
import torch

from lipsum_ft.training.loop import fit, run_identity
from tests.training.loop_helpers import config, make


def compiled(module: torch.nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The L2 distance between two states, over all their tensors."""
    assert a.keys() == b.keys()
    return float(torch.sqrt(sum(((a[k].double() - b[k].double()) ** 2).sum() for k in a)))


@pytest.mark.slow
def test_a_compiled_lipsum_run_follows_the_eager_loss_curve_and_exports_its_trained_weights(setup):
    torch._dynamo.reset()
    _, _, _, train, val = setup
    settings = config(steps=4, eval_every=2)
    eager_objective, compiled_objective = make(setup), make(setup)
    eager = fit(eager_objective, train, val, settings)
    result = fit(compiled_objective, train, val, config(steps=4, eval_every=2, compile=True))

    assert not compiled(eager_objective.classifier.visual)
    assert compiled(compiled_objective.classifier.visual) and compiled(compiled_objective.reference.visual)
    assert [row["step"] for row in result.log] == [1, 2, 3, 4]
    for key in ("loss", "ce", "reg"):  # the loss moves (lr 1e-3), so equal curves mean equal steps
        torch.testing.assert_close(
            torch.tensor([row[key] for row in result.log]),
            torch.tensor([row[key] for row in eager.log]),
            rtol=1e-4,
            atol=1e-5,
        )
    assert eager.log[0]["loss"] != pytest.approx(eager.log[-1]["loss"], abs=1e-3)
    assert result.best_step == eager.best_step
    # AdamW divides each gradient by its own running scale, so a rounding-level difference in a
    # near-zero gradient moves that weight by up to lr: compare the two runs' weights against how far
    # training moved them (an untrained or wrongly trained tower is a whole move away)
    start = make(setup).trainable_state()
    moved = distance(eager.best_state, start)
    assert moved > 1e-2
    assert distance(result.best_state, eager.best_state) < 0.01 * moved
    assert result.peak_memory_gib is None  # a CPU run has no allocator peak

    # export: an eager copy of its own, holding the best state (a copy that still called the
    # compiled original would follow the original's weights, which change below)
    compiled_objective.load_trainable_state(result.best_state)
    model, _ = compiled_objective.export()
    assert not compiled(model.visual)
    images = next(val.eval_batches(8))
    with torch.no_grad():
        for parameter in compiled_objective.classifier.visual.parameters():
            parameter.add_(0.5)
        eager_objective.load_trainable_state(eager.best_state)
        expected = eager_objective.classifier.visual(images)
        torch.testing.assert_close(model.visual(images), expected, rtol=1e-4, atol=1e-5)


def test_compile_is_not_part_of_a_runs_identity():
    """A checkpoint of an eager run resumes under compile and back: the same computation."""
    assert run_identity(config(compile=True)) == run_identity(config(compile=False))
    assert run_identity(config(lr=2e-3)) != run_identity(config())
