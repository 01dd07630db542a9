.PHONY: run test lint bench

run:    ## set up and start the site, a Celery worker and the demo data
	scripts/run.sh

test:   ## install dev requirements and run the whole test suite
	scripts/test.sh $(ARGS)

lint:
	.venv/bin/ruff check .

bench:  ## benchmarks (not tests): each prints a table and writes bench/results/
	for b in bench/bench_*.py; do .venv/bin/python $$b || exit 1; done
