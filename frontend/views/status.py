"""Status page: is the gateway up, and can it reach the database, broker and object store?"""

from __future__ import annotations

import streamlit as st

from frontend.api_client import GatewayClient, GatewayError, GatewayUnreachable, Health

CHECK_LABELS = {"database": "Database", "broker": "Broker (Redis)", "storage": "Object store"}


def render() -> None:
    """Draw the page from one `/healthz` call."""
    st.title("Platform status")
    with GatewayClient() as client:
        st.caption(f"Gateway: {client.base_url}")
        st.button("Refresh")  # any interaction reruns the page, which asks again
        try:
            health = client.health()
        except GatewayUnreachable as exc:
            st.error(
                f"The gateway is unreachable at {client.base_url}. "
                f"Is it running, and does TUNEFLOW_GATEWAY_URL point at it?\n\n{exc}"
            )
            return
        except GatewayError as exc:
            st.error(f"The gateway answered unexpectedly: {exc}")
            return
    _render_health(health)


def _render_health(health: Health) -> None:
    if health.ok:
        st.success("All systems operational")
    else:
        st.warning("Degraded: the gateway cannot reach every dependency")
    for name, check in health.checks.items():
        label = CHECK_LABELS.get(name, name)
        if check.ok:
            st.success(f"{label}: ok")
        else:
            st.error(f"{label}: down ({check.error or 'no detail'})")
