"""Evaluation of a trained model on a labelled corpus: predictions, metrics, figures, report.

``evaluate.py`` only adds ``@hydra.main``; :func:`ser.evaluation.run.evaluate` does the work.
"""
