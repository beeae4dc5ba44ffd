.PHONY: install test lint demo bench

install:
	python -m pip install -e ".[dev]"

test:
	python -m pytest -q

lint:
	ruff check .

demo:
	treefix demo

bench:
	python -m benchmarks.engine
