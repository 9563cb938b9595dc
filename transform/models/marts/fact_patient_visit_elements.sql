-- One row per live patient visit element: (instance_id, patient_visit_element_id).
select
    e.instance_id,
    e.patient_visit_element_id,
    e.patient_visit_element_uid,
    e.patient_visit_id,
    pv.study_id,
    pv.subject_id,
    e.element_id,
    e.element_name,
    e.sequence,
    e.duration_minutes,
    e.is_required,
    e.is_repeatable,
    e.is_repeated_element,
    e.completed_at,
    (e.completed_at is not null) as is_completed,
    e.loaded_at
from {{ ref('stg_cc__patient_visit_elements') }} as e
left join {{ ref('stg_cc__patient_visits') }} as pv
    on pv.instance_id = e.instance_id and pv.patient_visit_id = e.patient_visit_id and not pv.is_deleted
where not e.is_deleted
