"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from lipsum_ft.hooks import (
    InterruptedWritesHook,
    MissingInputsHook,
    RankZeroWritesHook,
    StudyRecordsHook,
    ValidateParametersHook,
)

# pluggy calls the last registered first: interrupted writes are recovered before inputs are checked
HOOKS = (
    ValidateParametersHook(),
    MissingInputsHook(),
    InterruptedWritesHook(),
    RankZeroWritesHook(),
    StudyRecordsHook(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # environments (test, domainnet, imagenet) override single nested keys of base
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
