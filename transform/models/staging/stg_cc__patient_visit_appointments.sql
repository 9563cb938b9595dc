-- The link between patient visits and appointments. AppointmentViewModel has no reference to a
-- patient visit; PatientVisitPreview lists its appointments (AppointmentPreview), so the link is
-- read from there: one row per (patient visit, appointment).
select
    src.instance_id,
    src.id as patient_visit_id,
    nullif(coalesce(appt ->> 'id', appt ->> 'Id'), '')::bigint as appointment_id,
    appt ->> 'status' as appointment_status,
    {{ cc_ts("(appt ->> 'scheduledStart')") }} as scheduled_start_at,
    {{ cc_ts("(appt ->> 'scheduledEnd')") }} as scheduled_end_at,
    (src._sdc_deleted_at is not null) as is_deleted
from ({{ cc_source('dim_patient_visits_staging') }}) as src
cross join lateral jsonb_array_elements(
    case when jsonb_typeof(src.data -> 'appointments') = 'array'
         then src.data -> 'appointments' else '[]'::jsonb end
) as appt
