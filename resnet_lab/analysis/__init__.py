"""Measurements of networks and the chapters' small experiments: what the book computes.

diagnostics (gradients, residuals), lesion (deleting blocks), landscape (loss slices), experiments.
"""
