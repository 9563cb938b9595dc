-- One row per live study document: (instance_id, study_document_id).
select
    instance_id, study_document_id, study_document_uid, study_id, document_type_id,
    document_type_name, document_category, status, status_at, status_updated_by_staff_id,
    description, version, source, effective_at, expires_at, stored_document_id, loaded_at
from {{ ref('stg_cc__study_documents') }}
where not is_deleted
