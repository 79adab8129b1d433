"""poster-genres: predict a film's genres from its poster (artwork + OCR text).

The library. Stage modules in ``stages/`` read params, call functions here and
write outputs; nothing in this package imports ``stages``.
"""

__version__ = "0.1.0"
