"""Typed parameters: one module per pipeline (``params:<group>``), the shared models in ``shared``,
and ``registry``, which validates every group together before any node runs.
"""
