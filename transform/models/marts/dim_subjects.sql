-- One row per live subject (a patient in a study): (instance_id, subject_id).
select
    instance_id, subject_id, subject_uid, study_id, site_id, patient_id, patient_name, status,
    protocol_version_id, arm_id, arm_name, gender_code, race, ethnicity, enrolled_at,
    enrollment_location, screening_number, randomization_number, treatment_status,
    treatment_started_at, facility_code, loaded_at
from {{ ref('stg_cc__subjects') }}
where not is_deleted
