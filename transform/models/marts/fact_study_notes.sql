-- One row per live study note: (instance_id, study_note_id). Source: fact_study_documents_staging.
select
    instance_id, study_note_id, study_id, staff_id, last_updated_by_staff_id, noted_at, note,
    is_locked, is_shared, loaded_at
from {{ ref('stg_cc__study_notes') }}
where not is_deleted
