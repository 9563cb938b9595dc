-- One row per live study: (instance_id, study_id).
select
    s.instance_id,
    s.study_id,
    s.study_uid,
    s.study_name,
    s.status,
    s.category,
    s.subcategory,
    s.identifier,
    s.title,
    s.protocol_number,
    s.phase,
    s.nct_number,
    s.study_group,
    s.launch_year,
    s.sponsor_id,
    coalesce(sp.sponsor_name, s.sponsor_name) as sponsor_name,
    s.sponsor_division_id,
    s.sponsor_team_id,
    s.managing_site_id,
    coalesce(si.site_name, s.managing_site_name) as managing_site_name,
    s.organization_id,
    s.created_at,
    s.last_updated_at,
    s.loaded_at
from {{ ref('stg_cc__studies') }} as s
left join {{ ref('stg_cc__sponsors') }} as sp
    on sp.instance_id = s.instance_id and sp.sponsor_id = s.sponsor_id and not sp.is_deleted
left join {{ ref('stg_cc__sites') }} as si
    on si.instance_id = s.instance_id and si.site_id = s.managing_site_id and not si.is_deleted
where not s.is_deleted
