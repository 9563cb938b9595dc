-- One row per live subject status event: (instance_id, subject_status_id) (synthetic text id).
select
    instance_id, subject_status_id, subject_id, study_id, site_id, status, is_current_status,
    event_at, comment, loaded_at
from {{ ref('stg_cc__subject_statuses') }}
where not is_deleted
