"""DVC stage entry points: each module reads its params, calls ``pipeline``, writes its outputs."""
