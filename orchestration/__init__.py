"""Dagster orchestration of the Meltano project: one code location for many tenants.

``definitions`` is the code location (``dagster dev -m orchestration.definitions``); ``tenants``
reads ``tenants.yml``; ``meltano_step`` builds a tenant's ``meltano run``; ``dbt`` wires
``transform/`` through dagster-dbt; ``checks`` and ``alerts`` hold the checks' SQL and the failure
webhook; ``dev`` is ``make orchestrate``. Only ``definitions`` and ``dbt`` import Dagster.
"""
