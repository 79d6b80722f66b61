"""Drift detection: baselines, detectors, scoring, exceptions and responses."""
