-- Appointments (job 25, AppointmentViewModel).
select
    instance_id,
    id as appointment_id,
    {{ cc_text('status') }} as status,
    {{ cc_tstz('plannedStart') }} as planned_start_at,
    {{ cc_tstz('plannedEnd') }} as planned_end_at,
    {{ cc_text('comment') }} as comment,
    {{ cc_ref_id('study') }} as study_id,
    {{ cc_ref_id('site') }} as site_id,
    {{ cc_ref_id('patient') }} as patient_id,
    {{ cc_ref_id('visit') }} as visit_id,
    {{ cc_ref_name('visit') }} as visit_name,
    {{ cc_meta_columns() }}
from ({{ cc_source('dim_appointments_staging') }}) as src
