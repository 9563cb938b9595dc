-- One row per live staff member: (instance_id, staff_id).
select
    instance_id, staff_id, staff_uid, display_name, first_name, last_name, login, email,
    profession, is_active, is_external, role_count, loaded_at
from {{ ref('stg_cc__staff') }}
where not is_deleted
