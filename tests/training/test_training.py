"""The Fabric loop: resume equals an uninterrupted run, non-finite losses stop cleanly,
two ranks equal one.
"""

from __future__ import annotations

import pytest
import torch

from lipsum_ft.training.loop import NonFiniteLossError, fit
from tests.training.loop_helpers import assert_states_equal, config, fault_at, make


def test_training_changes_weights_and_keeps_the_best_on_val(setup):
    result = fit(make(setup), setup[3], setup[4], config())
    assert [row["step"] for row in result.log] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "ce", "reg", "lr", "images_per_s"} <= result.log[0].keys()
    assert "val_acc" in result.log[2] and "val_acc" in result.log[5]
    assert result.best_step in (3, 6)
    assert result.best_val_acc == max(result.log[2]["val_acc"], result.log[5]["val_acc"])


def test_resume_equals_the_uninterrupted_run(setup, tmp_path, monkeypatch):
    straight = fit(make(setup), setup[3], setup[4], config())
    checkpoint = tmp_path / "ckpt.pt"
    interrupted = make(setup)
    restore = fault_at(monkeypatch, interrupted, 4, "interrupt")  # step 5
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, setup[3], setup[4], config(checkpoint_every=2, checkpoint_path=str(checkpoint)))
    assert torch.load(checkpoint, weights_only=True)["step"] == 4
    restore()
    resumed = fit(
        make(setup),
        setup[3],
        setup[4],
        config(checkpoint_every=2, checkpoint_path=str(checkpoint), resume=True),
    )
    assert [r["step"] for r in resumed.log] == [1, 2, 3, 4, 5, 6]
    assert_states_equal(straight.best_state, resumed.best_state, rtol=0, atol=0)
    assert [r["loss"] for r in straight.log] == [r["loss"] for r in resumed.log]


def plant_nan(objective, monkeypatch, at_step: int):
    """Make the ``reg`` term (and so the loss) NaN at 0-based ``at_step`` only."""
    original_forward = type(objective).forward

    def nan_at(self, images, labels, step):
        loss, terms = original_forward(self, images, labels, step)
        if step == at_step:
            terms = {**terms, "reg": torch.tensor(float("nan"))}
            loss = loss + terms["reg"]
        return loss, terms

    monkeypatch.setattr(type(objective), "forward", nan_at)


def test_non_finite_loss_names_step_and_terms_and_keeps_the_last_checkpoint(setup, tmp_path, monkeypatch):
    objective = make(setup)
    plant_nan(objective, monkeypatch, at_step=3)
    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(
        NonFiniteLossError,
        match=rf"step 4: loss=nan \(ce=[\d.]+, reg=nan\); last good checkpoint: {checkpoint} \(step 3\)",
    ):
        fit(objective, setup[3], setup[4], config(checkpoint_every=1, checkpoint_path=str(checkpoint)))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] == 3 and all(torch.isfinite(v).all() for v in saved["trainable"].values())


def test_a_nan_read_in_a_later_block_is_reported_at_its_own_step(setup, tmp_path, monkeypatch):
    # Values are read every 5 steps: the NaN of step 7 is found at step 10's read, and named as step 7
    # (not 10, nor 6); the checkpoint of step 5 stays, and step 10's (after the NaN) is never written.
    objective = make(setup)
    plant_nan(objective, monkeypatch, at_step=6)
    checkpoint = tmp_path / "ckpt.pt"
    settings = config(
        steps=12, eval_every=100, log_every=5, checkpoint_every=5, checkpoint_path=str(checkpoint)
    )
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at step 7: loss=nan \(ce=[\d.]+, reg=nan\)"
    ):
        fit(objective, setup[3], setup[4], settings)
    saved = torch.load(checkpoint, weights_only=False)
    assert saved["step"] == 5 and [row["step"] for row in saved["log"]] == [1, 2, 3, 4, 5]


def test_logs_read_every_step_and_every_ten_steps_are_identical_row_for_row(setup):
    # 23 steps: two full blocks of ten, a partial one, and validations (every 7) inside blocks.
    logs = [
        fit(make(setup), setup[3], setup[4], config(steps=23, eval_every=7, log_every=k)).log for k in (1, 10)
    ]
    timing = "images_per_s"  # wall-clock, differs between any two runs
    rows = [[{k: v for k, v in row.items() if k != timing} for row in log] for log in logs]
    assert [row["step"] for row in rows[0]] == list(range(1, 24))
    assert rows[0] == rows[1]
    assert [r["step"] for r in rows[0] if "val_acc" in r] == [7, 14, 21, 23]
    assert len({row["loss"] for row in rows[0]}) > 20  # per-step values, not one value per block


@pytest.mark.slow
@pytest.mark.parametrize("guidance", ["random_tokens", "fixed_pool"])
def test_two_processes_equal_one_with_the_same_global_batch(setup, guidance, capfd):
    # Adam turns a gradient of ~1e-9 into a full-size step of either sign, so float noise from the
    # all-reduce order would dominate parameters with vanishing gradients; a larger eps keeps every
    # update proportional to its gradient and lets the comparison be tight.
    settings = dict(steps=3, eval_every=3, eps=1e-3, lr=1e-2)
    # fixed_pool of captions: the pool's texts and cached features must agree across spawned ranks
    texts = dict(
        guidance=guidance,
        num_texts=16,
        pool_size=24,
        pool_source="class_free_captions",
        templates=["a photo of the digit {}."],
    )
    one = fit(make(setup, **texts), setup[3], setup[4], config(**settings))
    two = fit(make(setup, **texts), setup[3], setup[4], config(**settings, devices=2))
    moved = sum(
        (one.best_state[k] - setup[0].visual.state_dict()[k.removeprefix("visual.")]).abs().sum()
        for k in one.best_state
        if k.startswith("visual.")
    )
    assert moved > 1e-3  # training did change the weights
    assert_states_equal(one.best_state, two.best_state, rtol=1e-5, atol=1e-6)
    assert [r["loss"] for r in one.log] == pytest.approx(
        [r["loss"] for r in two.log], rel=1e-5
    )  # global-batch loss
    # DDP did not search each step for unused parameters (the ranks' PyTorch warns when it finds none)
    assert "find_unused_parameters=True was specified" not in capfd.readouterr().err


@pytest.mark.slow
def test_lpft_on_two_processes_equals_one_across_its_switch_from_probing(setup):
    # step 0 trains the head alone, steps 1 and 2 everything: DDP must expect unused parameters
    settings = dict(steps=3, eval_every=3, eps=1e-3, lr=1e-2)
    objectives = [make(setup, "lpft", lp_fraction=0.5, steps=3) for _ in range(2)]
    assert [o.lp_steps for o in objectives] == [1, 1]
    one = fit(objectives[0], setup[3], setup[4], config(**settings))
    two = fit(objectives[1], setup[3], setup[4], config(**settings, devices=2))
    assert_states_equal(one.best_state, two.best_state, rtol=1e-5, atol=1e-6)
    assert [r["loss"] for r in one.log] == pytest.approx([r["loss"] for r in two.log], rel=1e-5)
