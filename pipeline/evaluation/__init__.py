"""Judging predictions: :mod:`.metrics` (multi-label metrics on arrays), :mod:`.thresholds`
(decision rules), :mod:`.evaluate` (the evaluate stage's tables), and the comparison of methods:
:mod:`.methods`, :mod:`.runs`, :mod:`.compare` (tables, paired film bootstrap, Holm)."""
