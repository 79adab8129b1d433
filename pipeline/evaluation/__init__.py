"""Judging trained models: :mod:`.evaluate` (the evaluate stage's tables), :mod:`.live` (DVCLive metrics and
plots), :mod:`.review` (the review page), and the comparison of methods: :mod:`.methods`, :mod:`.runs`,
:mod:`.compare` (tables, paired tests over films and seeds, Holm), :mod:`.results` (committed reports) and
:mod:`.product_report` (the product against the paper's head over seeds). The numbers themselves come from
:mod:`pipeline.scoring`."""
