{#-
  The rows of one staging table with normalised column names, whatever the target did:

    instance_id, id, parent_id, source_modified_at (timestamptz), data (jsonb),
    _sdc_extracted_at, _sdc_batched_at, _sdc_deleted_at (timestamptz), _sdc_table_version

  * Column names are matched ignoring case and underscores, so "studyId", studyid and study_id
    all work (target-postgres may conform camelCase names to snake_case or keep them quoted).
  * A missing table (a stream not selected, or one of the job plan's endpoints that answer 404 on
    real tenants) or a missing column gives typed NULLs: the models still build, with no rows.
  * source() is always called, so the lineage graph shows every staging table.
  * Deletes: _sdc_deleted_at is also set on rows that a later proven complete read of their
    tenant and stream (or of their parent) did not return, per cc_retired() below, and on rows
    whose parent study or patient visit is deleted (a budgeted run may not read a deleted
    parent's children again; CC deletes them with it). Models with such a parent name it in a
    `-- depends_on: {{ ref(...) }}` line, so that dbt builds the parent's view first.
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
with raw as (
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
)
{{ cc_retired(table, parent_key) }}
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

{#-
  The rows of `raw` (a CTE in scope) with _sdc_deleted_at also set where a proven complete read
  of their tenant and stream, or of their parent, did not return them: the row's last extraction
  is older than the read's start, and its change value reaches the read's lower bound, if any.
  The read's start is the deletion time. Rows that still exist are returned by every such read,
  so they are never retired.

  The tap writes a complete read to cc_complete_reads only after it proved the read whole
  (tap_clinical_conductor/completeness.py). It counts here only once the warehouse holds at least
  as many rows of its scope extracted since its start as the read wrote (a load that did not
  arrive whole retires nothing), and a read that wrote no rows proves nothing. Equality joins
  only (whole stream on the tenant, one parent on tenant and parent): linear in rows and reads.
-#}
{#- The staging model of each parent, and its id column: child rows of a deleted parent retire. -#}
{% macro cc_parent_model(parent_key) -%}
{%- set key = (parent_key or '') | lower | replace('_', '') -%}
{{- return({'studyid': ('stg_cc__studies', 'study_id'),
            'patientvisitid': ('stg_cc__patient_visits', 'patient_visit_id')}.get(key)) -}}
{%- endmacro %}

{% macro cc_retired(table, parent_key=none) -%}
{%- set src = source('cc', 'cc_complete_reads') -%}
{%- set rel = none -%}
{%- if execute -%}
    {%- set rel = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) -%}
{%- endif -%}
{%- set parent = cc_parent_model(parent_key) -%}
{%- if parent is not none -%}
, gone_parents as (
    select instance_id, {{ parent[1] }} as id, min(deleted_at) as deleted_at
    from {{ ref(parent[0]) }}
    where is_deleted
    group by instance_id, {{ parent[1] }}
)
{%- endif %}
{%- if rel is none -%}
select
    raw.instance_id, raw.id, raw.parent_id, raw.source_modified_at, raw.data,
    raw._sdc_extracted_at, raw._sdc_batched_at,
    {{ 'coalesce(raw._sdc_deleted_at, gp.deleted_at)' if parent is not none else 'raw._sdc_deleted_at' }} as _sdc_deleted_at,
    raw._sdc_table_version
from raw
{%- if parent is not none %}
left join gone_parents as gp on gp.instance_id = raw.instance_id and gp.id = raw.parent_id
{%- endif %}
{%- else -%}
{%- set cols = {} -%}
{%- for c in adapter.get_columns_in_relation(rel) -%}
    {%- do cols.update({(c.name | lower | replace('_', '')): c}) -%}
{%- endfor -%}
, reads as (
    select
        {{ adapter.quote(cols['instanceid'].name) }}::text as instance_id,
        {{ adapter.quote(cols['parentid'].name) }}::bigint as parent_id,
        {{ cc_column_ts(cols['startedat']) }} as started_at,
        {{ cc_column_ts(cols['lowerbound']) }} as lower_bound,
        {{ adapter.quote(cols['records'].name) }}::bigint as records
    from {{ src }}
    where {{ adapter.quote(cols['stagingtable'].name) }} = '{{ table }}'
      and {{ adapter.quote(cols['records'].name) }} > 0
), whole as (
    select r.instance_id, r.started_at, r.lower_bound
    from reads as r
    join raw as seen
      on seen.instance_id = r.instance_id and seen._sdc_extracted_at >= r.started_at
    where r.parent_id is null
    group by r.instance_id, r.started_at, r.lower_bound, r.records
    having count(*) >= r.records
), per_parent as (
    select r.instance_id, r.parent_id, r.started_at, r.lower_bound
    from reads as r
    join raw as seen
      on seen.instance_id = r.instance_id and seen.parent_id = r.parent_id
     and seen._sdc_extracted_at >= r.started_at
    where r.parent_id is not null
    group by r.instance_id, r.parent_id, r.started_at, r.lower_bound, r.records
    having count(*) >= r.records
)
select
    raw.instance_id, raw.id, raw.parent_id, raw.source_modified_at, raw.data,
    raw._sdc_extracted_at, raw._sdc_batched_at,
    coalesce(
        raw._sdc_deleted_at, greatest(w.started_at, p.started_at)
        {%- if parent is not none %}, gp.deleted_at{% endif %}
    ) as _sdc_deleted_at,
    raw._sdc_table_version
from raw
left join whole as w
  on w.instance_id = raw.instance_id and raw._sdc_extracted_at < w.started_at
 and (w.lower_bound is null or raw.source_modified_at >= w.lower_bound)
left join per_parent as p
  on p.instance_id = raw.instance_id and p.parent_id = raw.parent_id
 and raw._sdc_extracted_at < p.started_at
 and (p.lower_bound is null or raw.source_modified_at >= p.lower_bound)
{%- if parent is not none %}
left join gone_parents as gp on gp.instance_id = raw.instance_id and gp.id = raw.parent_id
{%- endif %}
{%- endif -%}
{%- endmacro %}
