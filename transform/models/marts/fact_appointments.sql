-- One row per live appointment: (instance_id, appointment_id). patient_visit_id comes from the
-- patient visits that list the appointment (NULL when none does; the lowest id when several do).
with links as (
    select instance_id, appointment_id, min(patient_visit_id) as patient_visit_id
    from {{ ref('stg_cc__patient_visit_appointments') }}
    where not is_deleted and appointment_id is not null
    group by instance_id, appointment_id
)
select
    a.instance_id,
    a.appointment_id,
    l.patient_visit_id,
    a.study_id,
    a.site_id,
    a.patient_id,
    a.visit_id,
    a.visit_name,
    a.status,
    a.planned_start_at,
    a.planned_end_at,
    round(extract(epoch from (a.planned_end_at - a.planned_start_at)) / 60.0, 2) as planned_duration_minutes,
    a.comment,
    a.loaded_at
from {{ ref('stg_cc__appointments') }} as a
left join links as l
    on l.instance_id = a.instance_id and l.appointment_id = a.appointment_id
where not a.is_deleted
