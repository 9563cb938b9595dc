-- One row per live patient: (instance_id, patient_id).
select
    p.instance_id,
    p.patient_id,
    p.patient_uid,
    p.display_name,
    p.first_name,
    p.last_name,
    p.status,
    p.status_reason,
    p.primary_site_id,
    si.site_name as primary_site_name,
    p.date_of_birth,
    p.date_of_death,
    p.gender_code,
    p.race,
    p.ethnicity,
    p.city,
    p.state,
    p.country,
    p.zip,
    p.active_study_count,
    p.loaded_at
from {{ ref('stg_cc__patients') }} as p
left join {{ ref('stg_cc__sites') }} as si
    on si.instance_id = p.instance_id and si.site_id = p.primary_site_id and not si.is_deleted
where not p.is_deleted
