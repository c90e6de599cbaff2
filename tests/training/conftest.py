"""The small model and images of ``test_training``, shared with the checkpoint tests."""

from tests.training.test_training import setup  # noqa: F401  (a fixture, used by name)
