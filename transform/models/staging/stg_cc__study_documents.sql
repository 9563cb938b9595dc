-- depends_on: {{ ref('stg_cc__studies') }}
-- Study documents (job 13, StudyDocumentViewModel), per study.
select
    instance_id,
    id as study_document_id,
    {{ cc_text('uid') }} as study_document_uid,
    parent_id as study_id,
    {{ cc_ref_id('type') }} as document_type_id,
    {{ cc_text('type', 'name') }} as document_type_name,
    {{ cc_text('type', 'category') }} as document_category,
    {{ cc_text('status', 'status') }} as status,
    {{ cc_tstz('status', 'date') }} as status_at,
    {{ cc_ref_id('status', 'updatedBy') }} as status_updated_by_staff_id,
    {{ cc_text('description') }} as description,
    {{ cc_text('version') }} as version,
    {{ cc_text('source') }} as source,
    {{ cc_tstz('effectiveDate') }} as effective_at,
    {{ cc_tstz('expirationDate') }} as expires_at,
    {{ cc_int('storedDocumentId') }} as stored_document_id,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_study_documents_staging', 'studyId') }}) as src
