"""Kedro pipelines; each wires the nodes of its own nodes.py."""
