-- depends_on: {{ ref('stg_cc__studies') }}
-- Study notes (job 29, StudyNoteViewModel), per study. The job plan loads them into
-- fact_study_documents_staging; the name of the table is kept, the model says what it holds.
select
    instance_id,
    id as study_note_id,
    parent_id as study_id,
    {{ cc_ref_id('staff') }} as staff_id,
    {{ cc_ref_id('lastUpdatedStaff') }} as last_updated_by_staff_id,
    {{ cc_tstz('date') }} as noted_at,
    {{ cc_text('note') }} as note,
    {{ cc_bool('locked') }} as is_locked,
    {{ cc_bool('shared') }} as is_shared,
    {{ cc_meta_columns() }}
from ({{ cc_source('fact_study_documents_staging', 'studyId') }}) as src
