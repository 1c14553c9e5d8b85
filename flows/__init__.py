"""Prefect flows for armsledger: thin orchestration, one module per stage.

Importing this package sets the process's Prefect defaults (telemetry off,
PREFECT_HOME and result storage inside the project) before Prefect itself is
imported; see armsledger.runtime.
"""
from armsledger.runtime import configure_environment

configure_environment()
