{#-
  The mart has one row per live row of the staging table it comes from (rows soft-deleted by a
  full reload, `_sdc_deleted_at` set, are not in the marts). A missing table counts as empty.
-#}
{% test row_count_matches_staging(model, staging_table, id_type='bigint') %}
with staged as (
    select count(*) as n
    from ({{ cc_source(staging_table, id_type=id_type) }}) s
    where s._sdc_deleted_at is null
),
modelled as (
    select count(*) as n from {{ model }}
)
select staged.n as staging_rows, modelled.n as mart_rows
from staged cross join modelled
where staged.n <> modelled.n
{% endtest %}
