"""TuneFlow's web UI. Run: `streamlit run frontend/app.py` with TUNEFLOW_GATEWAY_URL set.

This file only wires pages together; each page lives in `frontend/views/` and reaches the
platform through `frontend/api_client.py`.
"""

from __future__ import annotations

import streamlit as st

from frontend.views import status

st.set_page_config(page_title="TuneFlow", layout="wide")

navigation = st.navigation(
    [st.Page(status.render, title="Status", icon=":material/monitor_heart:", url_path="status", default=True)]
)
navigation.run()
