# syntax=docker/dockerfile:1
# Streamlit UI on :8501, a pure HTTP client of the gateway (TUNEFLOW_GATEWAY_URL).
# `tuneflow-base` is the named build context from base.Dockerfile, not a registry image.
# hadolint ignore=DL3006
FROM tuneflow-base
# `streamlit run` takes a script path; the app's modules import from the installed package.
WORKDIR /app
COPY frontend/ frontend/
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=4 \
    CMD ["tuneflow-healthcheck", "http://127.0.0.1:8501/_stcore/health"]
CMD ["streamlit", "run", "frontend/app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", "--browser.gatherUsageStats=false"]
