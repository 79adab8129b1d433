"""The feature store: what is computed once per poster image (OCR, image and text vectors) or per film (its
synopsis's vector, its metadata) and cached by content.

:mod:`.ocr` (engines by name, the words on a poster), :mod:`.encoders` (frozen image and text
encoders by name), :mod:`.cache` (the content-addressed, resumable cache) and :mod:`.store`
(embedding posters and texts into HDF5 arrays with Parquet indexes)."""
