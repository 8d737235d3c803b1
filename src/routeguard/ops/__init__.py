"""Runbook automation and the demo: what an operator would otherwise do by hand."""
