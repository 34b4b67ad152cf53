"""Scores over time and journey-stage changes (contract §7)."""
