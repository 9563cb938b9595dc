-- One row per live study action: (instance_id, study_action_id).
select
    instance_id, study_action_id, study_id, action_name, status, action_type, category_id,
    category_name, assigned_to_staff_id, requested_by_staff_id, completed_by_staff_id,
    scheduling_mode, due_min_at, due_max_at, completed_at, comment, loaded_at
from {{ ref('stg_cc__study_actions') }}
where not is_deleted
