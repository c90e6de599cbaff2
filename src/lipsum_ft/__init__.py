"""lipsum-ft: robust fine-tuning of CLIP-style zero-shot models as Kedro pipelines."""

__version__ = "0.1.0"
