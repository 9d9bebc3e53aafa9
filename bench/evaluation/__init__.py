"""Evaluation: metrics (torch-fidelity extractors, the spectral ratio, toy distances), the
protocol, ``evaluate_run``, the results store, tables and plots."""
