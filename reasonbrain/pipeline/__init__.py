"""Orchestration logic behind the Prefect flows in ``flows/`` (which stay thin).

Following the pipeline: ``dvc`` runs DVC stages and edits params.yaml the way ``dvc exp run -S``
does; ``project`` knows where DVC writes what and guards the workspace; ``steps`` are the
post-DVC steps — record the dataset version (``records``), register models with their lineage
(:mod:`reasonbrain.lineage`), record evaluations (``evaluations``), the promotion gate
(``gate``); ``landing`` is the landing zone of the ``ingest`` flow; ``notify`` and ``hooks``
send failures, promotions and quarantines; ``retry`` says which failures a retry can fix.
Nothing here imports torch: model work happens in the DVC stages' own processes.
"""
