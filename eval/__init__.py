"""Evaluation of the answering pipeline: test sets, metrics (our own and RAGAS with a local
judge), resumable runs stored in SQLite, comparisons, gates and reports.

``python -m eval --help`` lists the commands; docs/evaluation.md describes them."""
