"""OCR: the words printed on a poster, read by a named engine behind the feature cache.

* :mod:`.engines`: the registry (``ENGINES``), the common record and identities;
* :mod:`.easyocr_engine`, :mod:`.rapidocr_engine`: one module per engine, each registering its
  reader (``easyocr``, ``rapidocr``); imported here, so importing any part of this package
  registers every engine (cheap: an engine's own package is imported only when it reads);
* :mod:`.run`: :func:`run_ocr` (cache, worker processes, resume);
* :mod:`.text`: :func:`ocr_texts`, the reading-order text that reaches the text encoder;
* :mod:`.quality`: :func:`title_recall`, how many film-title words a read found.
"""

from pipeline.features.ocr import easyocr_engine, rapidocr_engine  # noqa: F401  (each registers its reader)
from pipeline.features.ocr.engines import ENGINES, OcrSetupError, create_reader, ocr_identity
from pipeline.features.ocr.quality import read_quality, title_recall, title_words
from pipeline.features.ocr.run import OCR_SCHEMA, ocr_table_arrow, ocr_workers, run_ocr
from pipeline.features.ocr.text import ocr_texts, poster_text, split_joined_words, splits_words

__all__ = ["ENGINES", "OCR_SCHEMA", "OcrSetupError", "create_reader", "ocr_identity", "ocr_table_arrow",
           "ocr_texts", "ocr_workers", "poster_text", "run_ocr",
           "read_quality", "split_joined_words", "splits_words", "title_recall", "title_words"]
