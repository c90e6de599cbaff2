"""Project hooks: validate parameters before any node runs."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from lipsum_ft.params import validate_parameters


class ValidateParametersHook:
    """Fail at start-up, naming the key, when a parameter group is malformed."""

    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)
