"""poster-genres: predict a film's genres from its poster (artwork + OCR text) and, where a catalogue has them,
the film's synopsis and metadata.

The library, in layers that import downward only: core -> data -> features -> scoring -> models ->
evaluation. Stage modules in ``stages/`` read params, call functions here and
write outputs; nothing in this package imports ``stages``.
"""

__version__ = "0.1.0"
