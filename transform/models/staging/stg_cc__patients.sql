-- Patients (job 3, PatientViewModel). No change timestamp in the model. Direct identifiers
-- (SSN, phone numbers, e-mail, street address, insurance) are deliberately not extracted.
select
    instance_id,
    id as patient_id,
    {{ cc_text('uid') }} as patient_uid,
    {{ cc_text('displayName') }} as display_name,
    {{ cc_text('firstName') }} as first_name,
    {{ cc_text('lastName') }} as last_name,
    {{ cc_text('status') }} as status,
    {{ cc_text('statusReason') }} as status_reason,
    {{ cc_ref_id('primarySite') }} as primary_site_id,
    {{ cc_date("data->>'dateOfBirth'") }} as date_of_birth,
    {{ cc_date("data->>'dateOfDeath'") }} as date_of_death,
    {{ cc_text('genderCode') }} as gender_code,
    {{ cc_text('race') }} as race,
    {{ cc_text('ethnicity') }} as ethnicity,
    {{ cc_text('city') }} as city,
    {{ cc_text('state') }} as state,
    {{ cc_text('country') }} as country,
    {{ cc_text('zip') }} as zip,
    {{ cc_array_length('activeStudies') }} as active_study_count,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_patients_staging') }}) as src
