-- depends_on: {{ ref('stg_cc__patient_visits') }}
-- Patient visit elements (job 24, PatientVisitElementPreview), per patient visit.
select
    instance_id,
    id as patient_visit_element_id,
    {{ cc_text('uid') }} as patient_visit_element_uid,
    parent_id as patient_visit_id,
    {{ cc_int('elementId') }} as element_id,
    {{ cc_text('name') }} as element_name,
    {{ cc_int('sequence') }} as sequence,
    {{ cc_int('durationMinutes') }} as duration_minutes,
    {{ cc_bool('required') }} as is_required,
    {{ cc_bool('repeatable') }} as is_repeatable,
    {{ cc_bool('isRepeatedElement') }} as is_repeated_element,
    {{ cc_tstz('completedOn') }} as completed_at,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_patient_visit_elements_staging', 'patientVisitId') }}) as src
