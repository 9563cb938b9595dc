-- Patient visits (job 9, PatientVisitPreview): one scheduled/performed visit of one subject.
-- subject is a SubjectPreviewModel (capitalised Id/Name).
select
    instance_id,
    id as patient_visit_id,
    {{ cc_text('uid') }} as patient_visit_uid,
    {{ cc_ref_id('study') }} as study_id,
    {{ cc_ref_id('subject') }} as subject_id,
    {{ cc_int('visitId') }} as visit_id,
    {{ cc_text('visitName') }} as visit_name,
    {{ cc_text('cycleName') }} as cycle_name,
    {{ cc_int('sequence') }} as sequence,
    {{ cc_bool('mandatory') }} as is_mandatory,
    {{ cc_text('status') }} as status,
    {{ cc_tstz('targetDueDate') }} as target_due_at,
    {{ cc_tstz('minDueDate') }} as min_due_at,
    {{ cc_tstz('maxDueDate') }} as max_due_at,
    {{ cc_array_length('appointments') }} as appointment_count,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_patient_visits_staging') }}) as src
