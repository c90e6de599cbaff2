"""Evaluation under shift: metrics, scoring of every variant on every domain, tables and plots."""
