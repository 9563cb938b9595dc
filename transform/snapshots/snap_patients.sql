{#-
  Type 2 history of patients. Change detection compares a hash of the whole API record, so it works
  whether or not the entity carries a change timestamp. Rows soft-deleted by a full reload
  (_sdc_deleted_at set) are left out here, so hard_deletes='invalidate' closes their current
  version (dbt_valid_to set): they no longer appear as current.
-#}
{% snapshot snap_patients %}
{{ config(
    unique_key=['instance_id', 'patient_id'],
    strategy='check',
    check_cols=['record_hash'],
    hard_deletes='invalidate',
) }}
select * from {{ ref('stg_cc__patients') }}
where not is_deleted
{% endsnapshot %}
