"""Scoring predictions, arrays in and numbers out (numpy only; no model, no file): :mod:`.metrics` (multi-label
metrics), :mod:`.thresholds` (decision rules), :mod:`.calibration` (temperature and Platt scaling, ECE) and
:mod:`.decisions` (a calibration and a rule per input pattern, fitted on validation). Models and evaluation
build on it; it imports nothing of theirs."""
