{#-
  The mart has one row per live row of the staging table it comes from (rows soft-deleted by a
  full reload, `_sdc_deleted_at` set, are not in the marts). A missing table counts as empty.
  `staging_model`: count the live rows of that staging view instead (per-parent tables, whose
  rows also retire with a deleted parent, which the view knows).
-#}
{% test row_count_matches_staging(model, staging_table, id_type='bigint', staging_model=none) %}
with staged as (
    select count(*) as n
    {%- if staging_model is not none %}
    from {{ staging_model }} s
    where not s.is_deleted
    {%- else %}
    from ({{ cc_source(staging_table, id_type=id_type) }}) s
    where s._sdc_deleted_at is null
    {%- endif %}
),
modelled as (
    select count(*) as n from {{ model }}
)
select staged.n as staging_rows, modelled.n as mart_rows
from staged cross join modelled
where staged.n <> modelled.n
{% endtest %}
