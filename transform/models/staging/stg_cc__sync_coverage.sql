-- What each run read of each stream, and how stale the stream can be (the tap's cc_sync_coverage).
-- Typed columns whatever the loader made of them; no rows before the tap's first budgeted run.
{%- set src = source('cc', 'cc_sync_coverage') -%}
{%- set rel = none -%}
{%- if execute -%}
    {%- set rel = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) -%}
{%- endif -%}
{%- set numbers = ['parents_total', 'read_new', 'read_changed', 'read_live', 'read_sweep',
                   'unread_new', 'requests', 'records', 'sweep_cursor'] -%}
{%- set decimals = ['sweep_done_share', 'sweep_period_days', 'staleness_bound_hours'] -%}
{%- if rel is none %}
select
    null::text as instance_id,
    null::text as stream,
    null::timestamptz as run_started_at,
    null::timestamptz as tenant_today,
    {%- for n in numbers %}
    null::bigint as {{ n }},
    {%- endfor %}
    {%- for n in decimals %}
    null::numeric as {{ n }},
    {%- endfor %}
    null::boolean as budget_stopped
where false
{%- else %}
{%- set cols = {} -%}
{%- for c in adapter.get_columns_in_relation(rel) -%}
    {%- do cols.update({(c.name | lower | replace('_', '')): c}) -%}
{%- endfor %}
select
    {{ adapter.quote(cols['instanceid'].name) }}::text as instance_id,
    {{ adapter.quote(cols['stream'].name) }}::text as stream,
    {{ cc_column_ts(cols['runstartedat']) }} as run_started_at,
    {{ cc_column_ts(cols['tenanttoday']) if 'tenanttoday' in cols else 'null::timestamptz' }} as tenant_today,
    {%- for n in numbers %}
    {%- set c = cols.get(n | replace('_', '')) %}
    {{ (adapter.quote(c.name) ~ '::bigint') if c is not none else 'null::bigint' }} as {{ n }},
    {%- endfor %}
    {%- for n in decimals %}
    {%- set c = cols.get(n | replace('_', '')) %}
    {{ (adapter.quote(c.name) ~ '::numeric') if c is not none else 'null::numeric' }} as {{ n }},
    {%- endfor %}
    {%- set b = cols.get('budgetstopped') %}
    {{ (adapter.quote(b.name) ~ '::boolean') if b is not none else 'null::boolean' }} as budget_stopped
from {{ src }}
{%- endif %}
