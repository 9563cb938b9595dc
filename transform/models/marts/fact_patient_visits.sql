-- One row per live patient visit: (instance_id, patient_visit_id). The subject's patient and
-- site are carried over from dim_subjects so the fact joins to patients and sites directly.
select
    pv.instance_id,
    pv.patient_visit_id,
    pv.patient_visit_uid,
    coalesce(pv.study_id, su.study_id) as study_id,
    pv.subject_id,
    su.patient_id,
    su.site_id,
    pv.visit_id,
    pv.visit_name,
    pv.cycle_name,
    pv.sequence,
    pv.is_mandatory,
    pv.status,
    pv.target_due_at,
    pv.min_due_at,
    pv.max_due_at,
    pv.appointment_count,
    (pv.status = 'Completed') as is_completed,
    pv.loaded_at
from {{ ref('stg_cc__patient_visits') }} as pv
left join {{ ref('stg_cc__subjects') }} as su
    on su.instance_id = pv.instance_id and su.subject_id = pv.subject_id and not su.is_deleted
where not pv.is_deleted
