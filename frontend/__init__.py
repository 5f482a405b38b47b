"""TuneFlow's web UI (Streamlit): a plain HTTP client of the gateway."""
