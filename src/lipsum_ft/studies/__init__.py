"""What only the studies need (guidance and ablation): per-image outcomes, the bootstrap, model
choice without shift labels, sensitivity, diagnostics, findings and their reports and figures.
The chain's own scoring and reporting stay in ``evaluation``; the runs in ``training.runs``.
"""
