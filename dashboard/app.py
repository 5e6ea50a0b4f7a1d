"""The ReasonBrain review dashboard (``reasonbrain dashboard``; ``streamlit run`` entry point).

Pages (``dashboard/views/``): Overview, Metrics, Edit browser, Registry, Review. Everything is
read from the metadata database and the object store named by the usual settings
(``REASONBRAIN_DB_URL``, ``REASONBRAIN_STORE_URI``); writes (reviews, alias moves) go through
:mod:`dashboard.reviews` and the registry API. Never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

# A script entry point: make the repository root importable when started as
# `streamlit run dashboard/app.py` (Streamlit puts only this file's folder on sys.path).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="ReasonBrain", page_icon=":material/psychology:", layout="wide")
st.navigation(
    [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page(VIEWS / "metrics.py", title="Metrics", icon=":material/monitoring:"),
        st.Page(
            VIEWS / "edits.py",
            title="Edit browser",
            icon=":material/photo_library:",
            url_path="edits",
        ),
        st.Page(VIEWS / "registry.py", title="Registry", icon=":material/inventory_2:"),
        st.Page(VIEWS / "review.py", title="Review", icon=":material/rate_review:"),
    ]
).run()
