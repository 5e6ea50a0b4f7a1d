"""The ReasonBrain review dashboard (Streamlit): the ``review`` step of the pipeline.

People judge an image editor by looking: this app shows what the pipeline recorded — models and
their aliases, flow runs, metrics with confidence intervals, every edit of every evaluation — and
records what reviewers say about them. It reads the metadata database and the object store only
(``reasonbrain.registry``), never imports torch, and writes only reviews and alias moves.

- :mod:`~dashboard.app` — the entry point (``reasonbrain dashboard`` → ``streamlit run``).
- :mod:`~dashboard.views` — one page script per page.
- :mod:`~dashboard.records`, :mod:`~dashboard.queries`, :mod:`~dashboard.samples` — typed
  read queries (paged and filtered in SQL).
- :mod:`~dashboard.reviews` — reviews: write, progress, agreement, JSONL export.
- :mod:`~dashboard.images` — object-store images, fetched in parallel, cached by URI.
- :mod:`~dashboard.charts` — Altair charts.
- :mod:`~dashboard.access` — settings and the write gate (password when exposed).
- :mod:`~dashboard.connect` — opening the database and the store without migrating anything.
- :mod:`~dashboard.ui` — Streamlit helpers shared by the pages.
"""
