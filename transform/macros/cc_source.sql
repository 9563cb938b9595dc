{#-
  The rows of one staging table with normalised column names, whatever the target did:

    instance_id, id, parent_id, source_modified_at (timestamptz), data (jsonb),
    _sdc_extracted_at, _sdc_batched_at, _sdc_deleted_at (timestamptz), _sdc_table_version

  * Column names are matched ignoring case and underscores, so "studyId", studyid and study_id
    all work (target-postgres may conform camelCase names to snake_case or keep them quoted).
  * A missing table (a stream not selected, or one of the job plan's endpoints that answer 404 on
    real tenants) or a missing column gives typed NULLs: the models still build, with no rows.
  * source() is always called, so the lineage graph shows every staging table.
-#}
{% macro cc_source(table, parent_key=none, id_type='bigint') %}
{%- set src = source('cc', table) -%}
{%- set cols = {} -%}
{%- if execute -%}
    {%- set rel = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) -%}
    {%- if rel is not none -%}
        {%- for c in adapter.get_columns_in_relation(rel) -%}
            {%- do cols.update({(c.name | lower | replace('_', '')): c}) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endif -%}
{%- if cols | length == 0 -%}
select
    null::text as instance_id,
    null::{{ id_type }} as id,
    null::bigint as parent_id,
    null::timestamptz as source_modified_at,
    null::jsonb as data,
    null::timestamptz as _sdc_extracted_at,
    null::timestamptz as _sdc_batched_at,
    null::timestamptz as _sdc_deleted_at,
    null::bigint as _sdc_table_version
where false
{%- else -%}
{%- set parent = cols.get((parent_key or '') | lower | replace('_', '')) if parent_key else none -%}
{%- set change = cols.get('modifieddate') -%}
select
    {{ adapter.quote(cols['instanceid'].name) if 'instanceid' in cols else 'null' }}::text as instance_id,
    {{ adapter.quote(cols['id'].name) }}::{{ id_type }} as id,
    {{ (adapter.quote(parent.name) ~ '::bigint') if parent is not none else 'null::bigint' }} as parent_id,
    {{ cc_column_ts(change) if change is not none else 'null::timestamptz' }} as source_modified_at,
    {{ adapter.quote(cols['data'].name) }}::jsonb as data,
    {%- for meta in ['_sdc_extracted_at', '_sdc_batched_at', '_sdc_deleted_at'] %}
    {%- set c = cols.get(meta | replace('_', '')) %}
    {{ cc_column_ts(c) if c is not none else 'null::timestamptz' }} as {{ meta }},
    {%- endfor %}
    {%- set v = cols.get('sdctableversion') %}
    {{ (adapter.quote(v.name) ~ '::bigint') if v is not none else 'null::bigint' }} as _sdc_table_version
from {{ src }}
{%- endif -%}
{% endmacro %}

{#- Metadata columns every staging model ends with. -#}
{% macro cc_meta_columns() -%}
    source_modified_at,
    _sdc_batched_at as loaded_at,
    _sdc_deleted_at as deleted_at,
    (_sdc_deleted_at is not null) as is_deleted,
    md5(data::text) as record_hash
{%- endmacro %}
