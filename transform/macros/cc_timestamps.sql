{#-
  Datetimes inside `data` are strings. CC sends them without an offset, in tenant-local time
  ("2024-01-15T10:15:00", sometimes with 7 fractional digits); some builds and the tap's own
  change column carry an offset or "Z". One rule for both:
    * with an offset  -> the instant it names
    * without offset  -> read as wall-clock time in var('tenant_timezone')
  The result is a timestamptz (an instant; shown in the session time zone, stored as UTC).
-#}
{% macro cc_ts(expr, tz=none) -%}
(case
    when nullif(btrim({{ expr }}), '') is null then null
    when btrim({{ expr }}) ~* '[T ][0-9:.]+(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
        then btrim({{ expr }})::timestamptz
    else btrim({{ expr }})::timestamp at time zone {{ ("'" ~ tz ~ "'") if tz else cc_tz_expr() }}
end)
{%- endmacro %}

{#-
  The zone of the row's instance: var tenant_timezones (or env CC_TENANT_TIMEZONES, JSON), a map
  instance_id -> IANA zone, for warehouses holding tenants in several zones; the others, and
  every row when the map is empty, use cc_tenant_timezone(). Needs `instance_id` in scope.
-#}
{% macro cc_tz_expr() -%}
{%- set zones = var('tenant_timezones', {}) or fromjson(env_var('CC_TENANT_TIMEZONES', '') or '{}') -%}
{%- if zones -%}
coalesce(case instance_id {% for k, v in zones.items() %}when '{{ k }}' then '{{ v }}' {% endfor %}end, '{{ cc_tenant_timezone() }}')
{%- else -%}
'{{ cc_tenant_timezone() }}'
{%- endif -%}
{%- endmacro %}

{#- A field that the API types as date-time but that means a calendar date (birth date): no shift. -#}
{% macro cc_date(expr) -%}
(left(nullif(btrim({{ expr }}), ''), 10)::date)
{%- endmacro %}

{#- A timestamp column of a staging table (type depends on the target): as timestamptz, UTC. -#}
{% macro cc_column_ts(column) -%}
{%- set quoted = adapter.quote(column.name) -%}
{%- set dtype = column.dtype | lower -%}
{%- if 'without time zone' in dtype or dtype == 'timestamp' -%}
({{ quoted }} at time zone 'UTC')
{%- elif 'with time zone' in dtype or dtype == 'timestamptz' -%}
{{ quoted }}
{%- else -%}
{{ cc_ts(quoted ~ '::text', 'UTC') }}
{%- endif -%}
{%- endmacro %}

{#-
  The tenant time zone: var tenant_timezone, else env CC_TENANT_TIMEZONE, else the tap's
  TAP_CLINICAL_CONDUCTOR_TENANT_TIMEZONE, else UTC.
-#}
{% macro cc_tenant_timezone() -%}
{{- var('tenant_timezone', '') or env_var('CC_TENANT_TIMEZONE', '') or env_var('TAP_CLINICAL_CONDUCTOR_TENANT_TIMEZONE', '') or 'UTC' -}}
{%- endmacro %}
