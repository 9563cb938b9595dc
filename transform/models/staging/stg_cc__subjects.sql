-- depends_on: {{ ref('stg_cc__studies') }}
-- Subjects (job 10, SubjectViewModel): a patient enrolled in a study. Per study: the staging
-- table's parent key (studyId) wins over data.study.id.
select
    instance_id,
    id as subject_id,
    {{ cc_text('uid') }} as subject_uid,
    coalesce(parent_id, {{ cc_ref_id('study') }}) as study_id,
    {{ cc_ref_id('site') }} as site_id,
    {{ cc_ref_id('patient') }} as patient_id,
    {{ cc_ref_name('patient') }} as patient_name,
    {{ cc_text('status') }} as status,
    {{ cc_ref_id('protocolVersion') }} as protocol_version_id,
    {{ cc_ref_id('arm') }} as arm_id,
    {{ cc_ref_name('arm') }} as arm_name,
    {{ cc_text('genderCode') }} as gender_code,
    {{ cc_text('race') }} as race,
    {{ cc_text('ethnicity') }} as ethnicity,
    {{ cc_tstz('enrollmentDate') }} as enrolled_at,
    {{ cc_text('enrollmentLocation') }} as enrollment_location,
    {{ cc_text('screeningNumber') }} as screening_number,
    {{ cc_text('randomizationNumber') }} as randomization_number,
    {{ cc_text('treatmentStatus') }} as treatment_status,
    {{ cc_tstz('treatmentStart') }} as treatment_started_at,
    {{ cc_text('facilityCode') }} as facility_code,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_subjects_staging', 'studyId') }}) as src
