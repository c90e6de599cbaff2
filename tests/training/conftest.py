"""The tiny model and images of the loop tests (``test_training``, ``test_checkpoint``)."""

from __future__ import annotations

import pytest

from tests.training.loop_helpers import tiny_setup


@pytest.fixture(scope="module")
def setup():
    return tiny_setup()
