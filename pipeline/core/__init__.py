"""What every part of the library uses: params (validated), file I/O (atomic writes, hashing),
errors, progress bars and device choice."""
