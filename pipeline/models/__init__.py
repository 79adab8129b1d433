"""Heads trained on cached features: :mod:`.heads` (the paper's and every baseline, by name),
:mod:`.losses`, :mod:`.datasets` (features + labels per split), :mod:`.train`,
:mod:`.checkpoint` and :mod:`.predict` (genres for new posters)."""
