"""One exception type for bad dataset input, so callers can catch it and users see one clear line."""


class DataInputError(ValueError):
    """Raised when a dataset folder, split file or manifest is unusable; the message names the culprit."""
